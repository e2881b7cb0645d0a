"""Streaming Parquet/Feather tables and .h5ad files (see :mod:`vaekit.data.streaming` for when data streams).

An .h5ad matrix is read row by row where it lies (:class:`H5adRows`; CSR rows are densified a batch at a time).
A Parquet or Feather file cannot be read by row (its pages are compressed column chunks), so it is converted
once, record batch by record batch, into a float32 .npy spill file in the temporary folder (``$TMPDIR``), which
then streams as any .npy file does. The spill file is unlinked as soon as it is open: nothing is left behind,
even after a crash, and its disk space returns when the process ends.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import require
from .arrow_table import ArrowFile, batch_values, describe, is_arrow_file, label_codes, plan_columns
from .h5ad import H5ad, is_h5ad
from .mapped import RowSource
from .npy_reader import NpyFile
from .types import DataInfo


def format_values(path: Path, source: str) -> Optional[int]:
    """How many values a Parquet/Feather table or an .h5ad matrix holds (from its metadata), or None for
    other files."""
    if is_arrow_file(path):
        f = ArrowFile(path, describe(path, source))
        return f.rows * len(f.schema.names)
    if is_h5ad(path):
        h = H5ad(path, source)
        try:
            return h.n_obs * h.n_vars
        finally:
            h.close()
    return None


class H5adRows:
    """An .h5ad matrix as rows, in the part a :class:`RowSource` plays for .npy files."""

    layout, scale = "table", None

    def __init__(self, h: H5ad):
        self.h, self.name = h, h.what
        self.starts = np.array([0, h.n_obs])
        self.info: Optional[DataInfo] = None

    def raw(self, rows: np.ndarray) -> np.ndarray:
        return self.h.rows(rows)

    def examples(self, rows: np.ndarray, normalize: bool = True) -> torch.Tensor:
        x = torch.from_numpy(self.h.rows(rows))
        return self.info.normalize(x) if normalize and self.info is not None else x

    def chunk_rows(self) -> int:
        return self.h.chunk_rows()


def open_format(path: Path, source: str, label_column: Optional[str], layer: Optional[str]) -> Optional[tuple]:
    """``(rows, labels, num_classes, class_names, columns, extra)`` of a streamed Parquet/Feather table or
    .h5ad file, or None for other data."""
    if is_h5ad(path):
        h = H5ad(path, source, layer)
        y = class_names = None
        if label_column is not None:
            codes, class_names = h.obs_codes(label_column)
            y = torch.from_numpy(codes).long()
        extra = {"label_column": label_column, "layer": layer}
        return H5adRows(h), y, None if y is None else len(class_names), class_names, h.var_names(), extra
    if not is_arrow_file(path):
        return None
    require(layer is None, f"--layer {layer} applies to AnnData .h5ad files, not '{source}'; drop --layer")
    what = describe(path, source)
    f = ArrowFile(path, what)
    features = plan_columns(f.schema, what, label_column)
    npy, labels = _spill(f, features, label_column, f"'{source}'")
    y = num_classes = class_names = None
    if label_column is not None:
        codes, num_classes, class_names = label_codes(labels, what, label_column)
        y = torch.from_numpy(codes).long()
    rows = RowSource([npy], np.array([0, npy.shape[0]]), "table", None, name=f"'{source}'")
    return rows, y, num_classes, class_names, features, {"label_column": label_column}


def _spill(f: ArrowFile, features: list, label_column: Optional[str], name: str) -> tuple:
    """``(NpyFile of the float32 features, labels list)``: the table written batch by batch to an unlinked
    .npy file."""
    wanted = features + ([label_column] if label_column is not None else [])
    fd, spill = tempfile.mkstemp(prefix="vaekit-stream-", suffix=".npy")
    labels = []
    try:
        with os.fdopen(fd, "wb") as out:
            header = {"descr": "<f4", "fortran_order": False, "shape": (f.rows, len(features))}
            np.lib.format.write_array_header_2_0(out, header)
            written = 0
            for batch in f.batches(wanted):
                with np.errstate(over="ignore"):  # beyond float32: Inf, refused by the table scan
                    out.write(memoryview(np.ascontiguousarray(batch_values(batch, features, f.what), "<f4")))
                written += batch.num_rows
                if label_column is not None:
                    labels.extend(batch.column(label_column).to_pylist())
        require(written == f.rows and written > 0, f"{f.what} has {written} readable rows but its metadata says "
                                                    f"{f.rows}; check that the file is complete")
        npy = NpyFile(Path(spill), name)
        npy.fd  # opened now, so the path can go
    finally:
        os.unlink(spill)
        f.pa.default_memory_pool().release_unused()  # the record batches' buffers, back to the system
    return npy, labels
