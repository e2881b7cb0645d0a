"""AnnData ``.h5ad`` files (the ``formats`` extra): the matrix ``X`` or a layer read in row chunks with h5py, and
``obs`` columns (read with anndata) as labels or categorical covariates.

``X`` may be dense (an HDF5 dataset) or sparse CSR (a group of ``data``/``indices``/``indptr``): a chunk of rows
is densified on its own, never the whole matrix, so a streamed file (:mod:`vaekit.data.streaming`) holds one
batch at a time and an in-memory one its dense float32 copy plus one chunk. CSC matrices are read in memory only.
:func:`open_h5ad` is the interface other parts use (count likelihoods, covariates): ``H5ad.rows``,
``H5ad.chunks``, ``H5ad.obs_codes`` and ``H5ad.is_counts``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import VaekitError, require
from .arrays import RawData, to_table
from .extras import need

CHUNK_VALUES = 1 << 20  # float32 values densified at once (4 MB; a CSR chunk's temporaries are a few times that)
FIX = "check that it is a complete .h5ad file written by anndata (AnnData.write_h5ad)"


def is_h5ad(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".h5ad"


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class H5ad:
    """An open .h5ad file's matrix (``X`` or ``layers/LAYER``), checked: ``n_obs`` x ``n_vars``, dense or CSR."""

    def __init__(self, path: Path, source: str, layer: Optional[str] = None):
        self.what = f".h5ad '{source}'"
        self.path, self.layer = Path(path), layer
        self._h5py = need("h5py", self.what)
        with self.guard():
            # no chunk cache: a scattered row's values are read where they lie, not whole 256 KB chunks into a
            # cache they evict each other from (7 ms, not 32 ms, for a shuffled batch of 512 rows of 784 values)
            self.file = self._h5py.File(self.path, "r", rdcc_nbytes=0)
            self._open_matrix()

    def guard(self):
        """A context turning h5py's errors (a truncated or foreign file, a broken element) into one VaekitError."""
        return _Guard(self.what)

    def _open_matrix(self) -> None:
        f, layer = self.file, self.layer
        if layer is not None:
            layers = sorted(f["layers"].keys()) if "layers" in f else []
            require(layer in layers, f"{self.what} has no layer '{layer}'; its layers are: "
                                     f"{', '.join(layers) or 'none'} (omit --layer to read X)")
        require("X" in f or layer is not None, f"{self.what} has no matrix X; {FIX}")
        self.where = "X" if layer is None else f"layers/{layer}"
        node = f[self.where]
        if isinstance(node, self._h5py.Dataset):
            require(node.ndim == 2, f"{self.what} {self.where} has shape {node.shape}; it must be a 2-D matrix "
                                    "(cells x genes)")
            self.format, self.dtype = "dense", node.dtype
            self.n_obs, self.n_vars = int(node.shape[0]), int(node.shape[1])
            self.matrix = node
        else:
            encoding = _text(node.attrs.get("encoding-type", node.attrs.get("h5sparse_format", "")))
            require(encoding in ("csr_matrix", "csc_matrix", "csr", "csc") and all(k in node for k in
                                                                                 ("data", "indices", "indptr")),
                    f"{self.what} {self.where} is neither a dense matrix nor a CSR/CSC sparse matrix "
                    f"(encoding '{encoding}'); {FIX}")
            shape = node.attrs.get("shape", node.attrs.get("h5sparse_shape"))
            require(shape is not None and len(shape) == 2, f"{self.what} {self.where} has no 2-D shape; {FIX}")
            self.format = "csr" if encoding.startswith("csr") else "csc"
            self.n_obs, self.n_vars = int(shape[0]), int(shape[1])
            self.data, self.indices = node["data"], node["indices"]
            self.dtype = self.data.dtype
            self.indptr = np.asarray(node["indptr"][:], dtype=np.int64)  # n + 1 numbers: small
            major = self.n_obs if self.format == "csr" else self.n_vars
            nnz = len(self.data)
            require(len(self.indptr) == major + 1 and len(self.indices) == nnz and self.indptr[0] == 0
                    and self.indptr[-1] == nnz and (np.diff(self.indptr) >= 0).all(),
                    f"{self.what} {self.where} is a corrupt {self.format.upper()} matrix (its indptr does not fit "
                    f"its {nnz} stored values); {FIX}")
        require(self.dtype.kind in "biuf", f"{self.what} {self.where} holds values of type {self.dtype}, not "
                                           "numbers; store a numeric matrix")
        require(self.n_obs > 0 and self.n_vars > 0,
                f"{self.what} {self.where} is empty ({self.n_obs} x {self.n_vars}); it needs at least one cell "
                "and one gene")

    # -- rows ---------------------------------------------------------------------------------
    def chunk_rows(self) -> int:
        return max(1, CHUNK_VALUES // self.n_vars)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (in the order asked) as float32 (len(rows), n_vars); only these are densified."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), self.n_vars), dtype=np.float32)
        if len(rows) == 0:
            return out
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        with self.guard():
            if self.format == "csc":
                raise VaekitError(f"{self.what} {self.where} is a CSC (column-major) matrix, which cannot be read "
                                  "row by row; load it in memory (--no-stream), or re-save it as CSR "
                                  "(adata.X = adata.X.tocsr())")
            breaks = np.flatnonzero(np.diff(ordered) != 1) + 1  # runs of adjacent rows: one range each
            firsts = ordered[np.concatenate([[0], breaks])]
            lasts = ordered[np.concatenate([breaks - 1, [len(rows) - 1]])] + 1
            if self.format == "dense":
                out[order] = _read_ranges(self._h5py, self.matrix, firsts, lasts - firsts).astype(np.float32)
                return out
            p0, p1 = self.indptr[firsts], self.indptr[lasts]
            values = _read_ranges(self._h5py, self.data, p0, p1 - p0)
            columns = _read_ranges(self._h5py, self.indices, p0, p1 - p0)
        require(len(columns) == 0 or (0 <= columns.min() and columns.max() < self.n_vars),
                f"{self.what} {self.where} is a corrupt CSR matrix (a column index outside 0..{self.n_vars - 1}); "
                f"{FIX}")
        per_row = self.indptr[ordered + 1] - self.indptr[ordered]
        out[np.repeat(order, per_row), columns] = values
        return out

    def chunks(self, rows: Optional[int] = None) -> Iterator[np.ndarray]:
        """The whole matrix in order, ``rows`` (default ~16 MB as float32) rows at a time."""
        if self.format == "csc":
            yield self._csc_dense()
            return
        step = rows or self.chunk_rows()
        for start in range(0, self.n_obs, step):
            yield self.rows(np.arange(start, min(self.n_obs, start + step)))

    def _csc_dense(self) -> np.ndarray:
        with self.guard():
            out = np.zeros((self.n_obs, self.n_vars), dtype=np.float32)
            rows = self.indices[:]
            require(len(rows) == 0 or (0 <= rows.min() and rows.max() < self.n_obs),
                    f"{self.what} {self.where} is a corrupt CSC matrix (a row index out of range); {FIX}")
            out[rows, np.repeat(np.arange(self.n_vars), np.diff(self.indptr))] = self.data[:]
        return out

    # -- annotations --------------------------------------------------------------------------
    def obs_names(self) -> list:
        """The names of the ``obs`` columns."""
        with self.guard():
            return [str(c) for c in self._obs().columns]

    def _obs(self):
        if getattr(self, "_obs_frame", None) is None:
            anndata = need("anndata", self.what)
            read_elem = getattr(getattr(anndata, "io", None), "read_elem", None) or anndata.experimental.read_elem
            require("obs" in self.file, f"{self.what} has no obs table; {FIX}")
            self._obs_frame = read_elem(self.file["obs"])
            require(len(self._obs_frame) == self.n_obs, f"{self.what} has {len(self._obs_frame)} obs rows but "
                                                        f"{self.n_obs} cells in {self.where}; {FIX}")
        return self._obs_frame

    def var_names(self) -> list:
        """The gene (column) names: the ``var`` index, read with h5py where it is where anndata >= 0.7 puts it
        (importing anndata and pandas costs ~100 MB), else with anndata; numbers when there are none."""
        with self.guard():
            if "var" not in self.file:
                return [str(i) for i in range(self.n_vars)]
            var = self.file["var"]
            index = _text(var.attrs.get("_index", "")) if isinstance(var, self._h5py.Group) else ""
            if index and index in var and isinstance(var[index], self._h5py.Dataset) and var[index].ndim == 1:
                names = [_text(v) for v in var[index][:]]
                return names if len(names) == self.n_vars else [str(i) for i in range(self.n_vars)]
            anndata = need("anndata", self.what)
            read_elem = getattr(getattr(anndata, "io", None), "read_elem", None) or anndata.experimental.read_elem
            names = [str(v) for v in read_elem(self.file["var"]).index]
        return names if len(names) == self.n_vars else [str(i) for i in range(self.n_vars)]

    def obs_codes(self, column: str) -> tuple:
        """``(codes int64 (n_obs,), class_names)`` of a categorical ``obs`` column (a label or a covariate):
        categories by sorted name (numbers by value), missing values refused."""
        from .arrow_table import label_codes

        codes, _, class_names = label_codes(self.obs_values(column), self.what, column)
        names = class_names or [str(i) for i in range(int(codes.max()) + 1)]
        return codes, names

    def obs_values(self, column: str, option: str = "--label-column") -> list:
        """The values of the ``obs`` column ``column`` (categorical, string or numeric), None where missing; a
        missing column is refused naming the columns there are."""
        with self.guard():
            obs = self._obs()
            require(column in obs.columns, f"{self.what} has no obs column '{column}' ({option}); its obs columns "
                                           f"are: {', '.join(map(str, obs.columns)) or 'none'}")
            series = obs[column]
            missing = series.isna().to_numpy()
            return [None if m else v for v, m in zip(series.astype(object).tolist(), missing)]

    def obs_covariates(self, names) -> dict:
        """``{name: values (n_obs,)}`` of the ``obs`` columns ``names`` (--covariate), as strings ("" where
        missing, which :func:`vaekit.data.covariates.encode` refuses)."""
        return {n: np.array(["" if v is None else str(v) for v in self.obs_values(n, "--covariate")], dtype=object)
                for n in names}

    def is_counts(self, x: Optional[np.ndarray] = None) -> bool:
        """Whether every value is a non-negative whole number (counts): of ``x`` if given, else read in chunks."""
        parts = [x] if x is not None else self.chunks()
        return all(bool((p >= 0).all() and (p == np.round(p)).all()) for p in parts)

    def close(self) -> None:
        self.file.close()

    def __getstate__(self):
        raise VaekitError(f"{self.what} is streamed from an open HDF5 file, which cannot be sent to another process")


def _read_ranges(h5py, dataset, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows ``starts[i]`` to ``starts[i] + lengths[i] - 1`` of ``dataset`` (increasing, not overlapping), one
    after the other, in one HDF5 read: the ranges are OR-ed into one selection (a read per range costs ~50 µs
    of h5py's own time, which a shuffled batch of scattered rows would pay hundreds of times)."""
    total = int(lengths.sum())
    out = np.empty((total, *dataset.shape[1:]), dtype=dataset.dtype)
    if total == 0:
        return out
    space, rest = dataset.id.get_space(), tuple(int(d) for d in dataset.shape[1:])
    space.select_none()
    for start, length in zip(starts.tolist(), lengths.tolist()):
        if length:
            space.select_hyperslab((start, *(0,) * len(rest)), (length, *rest), op=h5py.h5s.SELECT_OR)
    dataset.id.read(h5py.h5s.create_simple(out.shape), space, out)
    return out


class _Guard:
    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if e is None or isinstance(e, (VaekitError, PermissionError)):
            return False
        if isinstance(e, (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError,
                          MemoryError, OverflowError)):
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise VaekitError(f"could not read {self.what}: {reason}; {FIX}") from None
        return False


def open_h5ad(path: Path, source: str, layer: Optional[str] = None) -> H5ad:
    """The checked matrix of an .h5ad file (see :class:`H5ad`)."""
    return H5ad(path, source, layer)


def read_h5ad(path: Path, source: str, label_column: Optional[str] = None, layer: Optional[str] = None,
              covariates: Sequence[str] = ()) -> RawData:
    """An .h5ad file as a checked float32 table (cells x genes) in memory, densified chunk by chunk, with labels
    from the ``obs`` column ``label_column`` and categorical covariates from the ``obs`` columns ``covariates``;
    ``extra["counts"]`` says whether all values are whole and >= 0."""
    h = open_h5ad(path, source, layer)
    try:
        x = np.empty((h.n_obs, h.n_vars), dtype=np.float32)
        start = 0
        for chunk in h.chunks():
            x[start:start + len(chunk)] = chunk
            start += len(chunk)
        x = to_table(x, f"{h.what} ({h.where})")
        y = class_names = None
        if label_column is not None:
            y, class_names = h.obs_codes(label_column)
        columns = h.var_names()
        counts = h.is_counts(x)
        side = h.obs_covariates(covariates) if covariates else None
    finally:
        h.close()
    return RawData(f"'{source}'", "table", x, y, num_classes=None if y is None else len(class_names),
                   class_names=class_names, columns=columns, covariates=side,
                   extra={"path": str(path), "label_column": label_column, "layer": layer, "counts": counts})
