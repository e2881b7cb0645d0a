"""CSV/TSV tables: numeric feature columns plus an optional label column.

The first row is a header unless every cell in it is a number (then columns are named
"0", "1", ...). Empty cells count as missing and are reported, never filled in silently.
"""
from __future__ import annotations

import csv
import itertools
from array import array
from collections import Counter
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import VaekitError, require
from .arrays import RawData, to_table

MAX_LINE = 16 << 20  # characters in one line: a longer one is refused before it is split into cells


def read_csv(path: Path, name: str, label_column: Optional[str] = None, covariates: Sequence[str] = ()) -> RawData:
    """Read a table; ``label_column`` values become class indices by sorted unique value; ``covariates``
    columns are kept apart, as text (:mod:`vaekit.data.covariates`)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(_lines(f, name), delimiter=delimiter)
            rows = ((reader.line_num, row) for row in reader if any(cell.strip() for cell in row))
            first = next(rows, None)
            require(first is not None, f"CSV {name} is empty; it needs a header row and at least one data row")
            columns, has_header, label_idx, features = _columns(first[1], name, label_column, covariates)
            values, labels, lines = array("d"), [], []  # read row by row: memory grows by 8 bytes a value
            kept = {c: [] for c in covariates}
            for line, row in (rows if has_header else itertools.chain([first], rows)):
                _read_row(row, line, columns, features, label_idx, name, values, labels)
                for c in covariates:
                    kept[c].append(row[columns.index(c)].strip())
                lines.append(line)
    except PermissionError:  # said by data.files.readable
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise VaekitError(f"could not read CSV {name}: {e}; check that it is a UTF-8 text table") from None
    require(lines, f"CSV {name} has a header but no data rows; it needs at least one example")
    lines = np.array(lines)
    x = np.frombuffer(values, dtype=np.float64).reshape(len(lines), len(features)).copy()
    feature_names = [columns[i] for i in features]
    x = to_table(x, f"CSV {name}", columns=feature_names, row_numbers=lines)

    y = class_names = None
    if label_idx is not None:
        for line, v in zip(lines, labels):
            require(v != "", f"CSV {name} has an empty label in column '{label_column}' on line {line}; "
                             "give every row a label or drop the row")
        numeric = all(_is_number(v) for v in labels)
        class_names = sorted(set(labels), key=(lambda v: (float(v), v)) if numeric else None)
        lookup = {c: k for k, c in enumerate(class_names)}
        y = np.array([lookup[v] for v in labels], dtype=np.int64)
    return RawData(name, "table", x, y, num_classes=None if y is None else len(class_names),
                   class_names=class_names, columns=feature_names,
                   covariates={c: np.array(v) for c, v in kept.items()} if covariates else None,
                   extra={"path": str(path), "label_column": label_column})


def _lines(f, name: str) -> Iterator[str]:
    """The lines of ``f``, each refused past :data:`MAX_LINE` characters before it is split into cells."""
    for number in itertools.count(1):
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        require(len(line) <= MAX_LINE, f"CSV {name} line {number} is longer than {MAX_LINE} characters; this is "
                                       "not a table vaekit reads: check the file (a binary file, or missing line breaks)")
        yield line


def _columns(first: list, name: str, label_column: Optional[str], covariates: Sequence[str] = ()) -> tuple:
    """``(column names, whether the first row is a header, label index or None, feature indices)``; the
    ``covariates`` columns are no features."""
    first = [c.strip() for c in first]
    has_header = not all(_is_number(c) for c in first)
    columns = first if has_header else [str(i) for i in range(len(first))]
    counts = Counter(columns)
    dupes = sorted(c for c, k in counts.items() if k > 1)
    require(not dupes, f"CSV {name} has duplicate column names {dupes}; give every column a unique name")
    label_idx = None
    if label_column is not None:
        require(str(label_column) in counts,
                f"CSV {name} has no column '{label_column}' (label_column); its columns are: {', '.join(columns)}")
        label_idx = columns.index(str(label_column))
    for c in covariates:
        require(str(c) in counts, f"CSV {name} has no column '{c}' (--covariate); its columns are: {', '.join(columns)}")
        require(c != label_column, f"CSV {name} column '{c}' is the label column (--label-column); a covariate "
                                   "(--covariate) is another column")
    features = [i for i in range(len(columns)) if i != label_idx and columns[i] not in covariates]
    require(features, f"CSV {name} has no feature columns besides the label column '{label_column}'")
    return columns, has_header, label_idx, features


def _read_row(row: list, line: int, columns: list, features: list, label_idx: Optional[int], name: str,
              values: array, labels: list) -> None:
    """Append one data row's numbers to ``values`` and its label to ``labels``; empty cells are NaN."""
    require(len(row) == len(columns),
            f"CSV {name} line {line} has {len(row)} fields but the table has {len(columns)} columns; "
            "fix that line (check for stray commas or quotes)")
    for i in features:
        cell = row[i].strip()
        try:
            values.append(float(cell) if cell else np.nan)
        except ValueError:
            raise VaekitError(
                f"CSV {name} column '{columns[i]}' is not numeric (value {cell!r} on line {line}); "
                f"only numeric feature columns are supported: drop or encode that column, or pass "
                f"--label-column {columns[i]} (label_column='{columns[i]}' in Python) if it holds the labels"
            ) from None
    if label_idx is not None:
        labels.append(row[label_idx].strip())


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
