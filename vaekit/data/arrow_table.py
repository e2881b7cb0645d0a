"""Parquet and Feather tables (pyarrow, the ``formats`` extra): numeric feature columns plus an optional label
column, read record batch by record batch.

Numeric columns (integers, floats, booleans, decimals) are features; missing values become NaN and are refused
by the table checks as in a CSV. String and dictionary (categorical) columns are refused with a message: encode
them first (one-hot, e.g. ``pandas.get_dummies``), or name the column that holds the labels with
``--label-column``. The same conversion serves Hugging Face ``datasets`` tables (:mod:`vaekit.data.hf_datasets`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..errors import VaekitError, require
from .arrays import RawData, encode_labels, to_table
from .extras import need

BATCH_VALUES = 1 << 20  # values per record batch read from a Parquet file (8 MB as float64; 4 M peaked 80 MB higher)
SUFFIXES = {".parquet": "Parquet", ".pq": "Parquet", ".feather": "Feather", ".arrow": "Feather"}


def is_arrow_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in SUFFIXES


def describe(path: Path, source: str) -> str:
    """How messages name the file: "Parquet 'x.parquet'"."""
    return f"{SUFFIXES[path.suffix.lower()]} '{source}'"


class ArrowFile:
    """A Parquet or Feather file's schema and its record batches, opened (and checked) once."""

    def __init__(self, path: Path, what: str):
        self.pa = need("pyarrow", what)
        self.path, self.what = path, what
        try:
            if SUFFIXES[path.suffix.lower()] == "Parquet":
                pq = need("pyarrow.parquet", what)
                self._file = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering keeps the whole file
                self.schema, self.rows = self._file.schema_arrow, int(self._file.metadata.num_rows)
            else:
                self._file = self.pa.ipc.open_file(self.pa.memory_map(str(path)))
                self.schema = self._file.schema
                self.rows = sum(self._file.get_batch(i).num_rows for i in range(self._file.num_record_batches))
        except PermissionError:  # said by data.files.readable
            raise
        except (self.pa.ArrowException, OSError, ValueError, TypeError, IndexError, MemoryError) as e:
            raise read_error(what, e) from None

    def batches(self, columns: list) -> Iterator:
        """The record batches of ``columns``, in file order (Parquet: of at most ~4 M values each)."""
        try:
            if hasattr(self._file, "iter_batches"):
                rows = max(1, BATCH_VALUES // max(1, len(columns)))
                every = list(columns) == list(self.schema.names)  # naming 784 columns costs seconds
                yield from self._file.iter_batches(columns=None if every else columns, batch_size=rows,
                                                   use_threads=False)
            else:
                for i in range(self._file.num_record_batches):
                    yield self._file.get_batch(i).select(columns)
        except (self.pa.ArrowException, OSError, ValueError, TypeError, IndexError, MemoryError) as e:
            raise read_error(self.what, e) from None


def read_error(what: str, e: BaseException) -> VaekitError:
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    return VaekitError(f"could not read {what}: {reason}; check that the file is complete and was written "
                       "by pyarrow, pandas or another Arrow writer")


def plan_columns(schema, what: str, label_column: Optional[str]) -> list:
    """The feature columns of ``schema``: every column but the label column, each checked to be numeric."""
    pa = need("pyarrow", what)
    names = list(schema.names)
    dupes = sorted({c for c in names if names.count(c) > 1})
    require(not dupes, f"{what} has duplicate column names {dupes}; give every column a unique name")
    require(label_column is None or label_column in names,
            f"{what} has no column '{label_column}' (label_column); its columns are: {', '.join(names)}")
    features = [c for c in names if c != label_column]
    require(features, f"{what} has no feature columns besides the label column '{label_column}'")
    for c in features:
        t = schema.field(c).type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            raise VaekitError(f"{what} column '{c}' is categorical ({t}); vaekit reads numeric columns only: "
                              f"one-hot encode it first (e.g. pandas.get_dummies), drop it, or pass --label-column "
                              f"{c} (label_column='{c}' in Python) if it holds the labels")
        require(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_decimal(t),
                f"{what} column '{c}' has type {t}, not numbers; drop it or convert it to a numeric column")
    return features


def batch_values(batch, features: list, what: str) -> np.ndarray:
    """A record batch's feature columns as float64 (rows, D), a transposed view of a column-major array (filled
    column by column); nulls become NaN (refused by the table checks)."""
    pa = need("pyarrow", what)
    out = np.empty((len(features), batch.num_rows), dtype=np.float64)
    for j, c in enumerate(features):
        column = batch.column(c)
        t = column.type
        if column.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_floating(t)):
            out[j] = column.to_numpy(zero_copy_only=False)  # numpy casts while it copies: no arrow cast
            continue
        try:
            column = column.cast(pa.float64())
        except pa.ArrowException as e:
            raise VaekitError(f"{what} column '{c}' cannot be read as numbers ({e}); convert it first") from None
        out[j] = column.to_numpy(zero_copy_only=False)
    return out.T


def label_codes(values: list, what: str, label_column: str) -> tuple:
    """``(codes int64, num_classes, class_names)`` of the label column's values (strings by sorted name)."""
    missing = [i for i, v in enumerate(values) if v is None]
    require(not missing, f"{what} has {len(missing)} missing label(s) in column '{label_column}' (rows "
                         f"{', '.join(map(str, missing[:5]))}); give every row a label or drop the row")
    require(all(isinstance(v, (str, int, float, bool, np.integer, np.floating)) for v in values[:1000]),
            f"{what} column '{label_column}' holds {type(values[0]).__name__} values; labels must be strings "
            "or integers")
    (codes,), num_classes, class_names = encode_labels([np.asarray(values)], [len(values)],
                                                        f"{what} (column '{label_column}')")
    return codes, num_classes, class_names


def read_arrow_table(path: Path, source: str, label_column: Optional[str] = None) -> RawData:
    """A Parquet or Feather file as a checked float32 table, with labels from ``label_column``."""
    what = describe(path, source)
    f = ArrowFile(path, what)
    features = plan_columns(f.schema, what, label_column)
    wanted = features + ([label_column] if label_column is not None else [])
    require(f.rows > 0, f"{what} has no rows; it needs at least one example")
    x, labels, start = np.empty((f.rows, len(features)), dtype=np.float64), [], 0
    for batch in f.batches(wanted):
        require(start + batch.num_rows <= f.rows, f"{what} holds more rows than its metadata says ({f.rows}); "
                                                  "check that the file is complete")
        x[start:start + batch.num_rows] = batch_values(batch, features, what)
        start += batch.num_rows
        if label_column is not None:
            labels.extend(batch.column(label_column).to_pylist())
    require(start == f.rows, f"{what} has {start} readable rows but its metadata says {f.rows}; check that the "
                             "file is complete")
    x = to_table(x, what, columns=features)
    y = num_classes = class_names = None
    if label_column is not None:
        y, num_classes, class_names = label_codes(labels, what, label_column)
    return RawData(f"'{source}'", "table", x, y, num_classes=num_classes, class_names=class_names, columns=features,
                   extra={"path": str(path), "label_column": label_column})
