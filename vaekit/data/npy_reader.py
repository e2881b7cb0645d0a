"""Rows of .npy files read with ``pread``, so reading never grows the process's memory.

A memory map would be simpler, but every page it touches counts in the process's resident
memory until it is unmapped, and the kernel maps whole neighbourhoods around each touched
page ("fault-around"): one shuffled epoch over a mapped file grows RSS to the file's size.
``pread`` copies the rows into a buffer we own; the file's pages stay in the page cache,
which the kernel reclaims as needed. A map reads a row faster, and releasing it after every batch
(madvise(MADV_DONTNEED)) still lets each batch's fault-around map far more than the batch; pread's
copy is small next to a training step, and it bounds memory (the README, "Data larger than memory",
gives the measurements).

A folder of shards is one dataset: ``x-0.npy, x-1.npy, ...`` (any zero padding), numbered
from 0 without gaps and concatenated in numeric order, with optional labels
``y-0.npy, y-1.npy, ...`` (one per x shard, loaded into memory: labels are small).
"""
from __future__ import annotations

import math
import os
import re
import tokenize
import warnings
from pathlib import Path
from typing import List

import numpy as np

from ..errors import VaekitError, require
from .arrays import require_numeric_dtype

SHARD = re.compile(r"([xy])-([0-9]+)\.npy")  # used with fullmatch: ASCII digits, no trailing newline
SHARD_RULE = ("a folder of .npy shards is named x-0.npy, x-1.npy, ... (numbered from 0 without gaps, any zero "
              "padding), with optional labels y-0.npy, y-1.npy, ... beside them")
IOV_MAX = 1024  # buffers per preadv call (Linux's limit)
NPY_FIX = "save a numeric array with numpy.save and check that the file is complete"


def read_header(f, name: str, size: int, numeric: bool = True) -> tuple:
    """``(shape, fortran_order, dtype)`` of the .npy file open as ``f`` at its start, ``size`` bytes
    long, checked: no Python objects, a numeric dtype (if ``numeric``; labels may be strings), at least
    one axis, and as many bytes as the shape needs (before anything is allocated). ``f`` is left at
    the first data byte."""
    require(f.read(6) == b"\x93NUMPY", f"could not read {name}: it is not a .npy file (no numpy header); {NPY_FIX}")
    try:
        f.seek(0)
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        with warnings.catch_warnings():  # numpy's notes on a header it repaired (Python 2) or an old dtype
            warnings.simplefilter("ignore")  # alias ('a'): the header is checked below either way
            shape, fortran, dtype = read(f)
    except (ValueError, EOFError, SyntaxError, TypeError, RecursionError, MemoryError, tokenize.TokenError) as e:
        reason = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
        raise VaekitError(f"could not read {name} as a .npy array (its header is broken: {reason}); {NPY_FIX}") from None
    require(not dtype.hasobject, f"could not read {name} as a .npy array (it holds Python objects, which "
                                 f"vaekit does not load); {NPY_FIX}")
    require(dtype.subdtype is None, f"could not read {name} as a .npy array: each of its elements is an array of "
                                    f"shape {dtype.shape} ({dtype.base} values); {NPY_FIX}")
    if numeric:
        require_numeric_dtype(dtype, name)
    require(len(shape) >= 1, f"{name} holds a single number (shape ()); it needs examples along its first axis")
    require(all(s >= 0 for s in shape), f"{name} has a negative size in its shape {shape}; {NPY_FIX}")
    needed = f.tell() + math.prod(shape) * dtype.itemsize
    require(size >= needed, f"{name} is truncated: its header promises {shape[0]} rows of shape {tuple(shape[1:])} "
                            f"({needed} bytes) but the file has {size} bytes, so vaekit could not read it; "
                            f"{NPY_FIX}")
    return tuple(int(s) for s in shape), bool(fortran), dtype


def read_array(f, name: str, size: int) -> np.ndarray:
    """The whole array of the .npy file open as ``f`` (see :func:`read_header`), read into memory;
    its dtype is checked where it is used (labels may be strings)."""
    shape, fortran, dtype = read_header(f, name, size, numeric=False)
    out = np.empty(math.prod(shape), dtype)
    got = f.readinto(memoryview(out.view(np.uint8)))
    require(got == out.nbytes, f"could not read {name}: the file ended early; {NPY_FIX}")
    return out.reshape(shape[::-1]).transpose() if fortran else out.reshape(shape)


class NpyFile:
    """One .npy file's header, checked, and an open descriptor for reading its rows."""

    def __init__(self, path: Path, name: str):
        self.path, self.name, self._fd = Path(path), name, None
        try:
            with open(path, "rb") as f:
                shape, fortran, dtype = read_header(f, name, os.fstat(f.fileno()).st_size)
                self.offset = f.tell()
        except PermissionError:  # said by data.files.readable
            raise
        except OSError as e:
            raise VaekitError(f"could not read {name} as a .npy array ({e}); {NPY_FIX}") from None
        require(not fortran or len(shape) == 1 or math.prod(shape[1:]) == 1,
                f"{name} is stored in Fortran (column-major) order, which cannot be read row by row; "
                "re-save it with numpy.save(path, numpy.ascontiguousarray(x))")
        self.shape, self.dtype = shape, dtype
        self.row_bytes = math.prod(self.shape[1:]) * dtype.itemsize

    @property
    def fd(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()

    def __getstate__(self):  # a copy (another process) opens its own descriptor
        return {**self.__dict__, "_fd": None}

    def read_into(self, buffers: List[memoryview], first_row: int) -> None:
        """Fill ``buffers`` (whole rows, in file order) from row ``first_row`` on."""
        offset = self.offset + first_row * self.row_bytes
        want = len(buffers) * self.row_bytes if len(buffers) > 1 else buffers[0].nbytes
        got = os.preadv(self.fd, buffers, offset)
        while got < want and len(buffers) == 1:  # a short read of one big buffer: read the rest
            more = os.preadv(self.fd, [buffers[0][got:]], offset + got)
            if more <= 0:
                break
            got += more
        require(got == want, f"could not read {self.name}: the file ended early (it changed while being read?)")

    def read_all(self) -> np.ndarray:
        return read_rows([self], np.array([0, self.shape[0]]), np.arange(self.shape[0]))


def read_rows(files: List[NpyFile], starts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (global numbers over ``files``, whose first rows are ``starts``) as one array
    (len(rows), *shape), in the order asked; read in file order, one call per run of adjacent rows."""
    first = files[0]
    out = np.empty((len(rows), *first.shape[1:]), first.dtype)
    flat = out.reshape(len(rows), -1).view(np.uint8)
    if len(rows) == 0:
        return out
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    shard = np.searchsorted(starts, ordered, side="right") - 1
    local = (ordered - starts[shard]).tolist()
    breaks = (np.flatnonzero((np.diff(ordered) != 1) | (np.diff(shard) != 0)) + 1).tolist()
    # where the output is in file order too (a sequential read), a run fills one slice of it
    in_order = np.concatenate([[False], np.diff(order) == 1]).tolist()
    shard, order = shard.tolist(), order.tolist()
    rows_view = [memoryview(r) for r in flat]
    row_bytes, pread = first.row_bytes, os.preadv
    for a, b in zip([0, *breaks], [*breaks, len(rows)]):
        f = files[shard[a]]
        if b - a == 1:  # a lone row (most rows of a shuffled batch): one call, nothing else
            buf = [rows_view[order[a]]]
            if pread(f.fd, buf, f.offset + local[a] * row_bytes) != row_bytes:
                f.read_into(buf, local[a])  # says why
            continue
        for c in range(a, b, IOV_MAX):
            d = min(b, c + IOV_MAX)
            if d - c > 1 and all(in_order[c + 1:d]):
                bufs = [memoryview(flat[order[c]:order[c] + d - c]).cast("B")]
            else:
                bufs = [rows_view[j] for j in order[c:d]]
            f.read_into(bufs, local[c])
    return out


def shard_files(folder: Path, name: str) -> tuple:
    """``(x files, y files or None)`` of a folder of shards, checked to fit together."""
    found = {"x": {}, "y": {}}
    for p in folder.iterdir():
        m = SHARD.fullmatch(p.name)
        if m:
            number = int(m.group(2))
            other = found[m.group(1)].get(number)
            require(other is None, f"folder {name} has two shards numbered {number} ({other and other.name} and "
                                   f"{p.name}); {SHARD_RULE}")
            found[m.group(1)][number] = p
    xs, ys = found["x"], found["y"]
    require(xs, f"folder {name} has no x-0.npy shard; {SHARD_RULE}")
    for kind, files in (("x", xs), ("y", ys)):
        missing = [i for i in range(min(max(files), len(files) + 5)) if i not in files][:5] if files else []
        require(not missing, f"folder {name} has {kind} shards up to {kind}-{max(files or [0])}.npy but not "
                             f"number(s) {', '.join(map(str, missing[:5]))}; {SHARD_RULE}")
    require(not ys or set(ys) == set(xs), f"folder {name} has {len(xs)} x shards but {len(ys)} y shards; "
                                          "give one labels file per x shard, or none")
    x_files = [NpyFile(xs[i], f"'{xs[i]}'") for i in range(len(xs))]
    first = x_files[0]
    for f in x_files[1:]:
        require(f.shape[1:] == first.shape[1:] and f.dtype == first.dtype,
                f"shard {f.name} holds {f.dtype} examples of shape {f.shape[1:]} but {first.name} holds "
                f"{first.dtype} of shape {first.shape[1:]}; all shards must have the same dtype and example shape")
    y_files = [NpyFile(ys[i], f"'{ys[i]}'") for i in range(len(ys))] if ys else None
    for fx, fy in zip(x_files, y_files or []):
        require(len(fy.shape) == 1 and fy.shape[0] == fx.shape[0],
                f"labels {fy.name} have shape {fy.shape} but {fx.name} has {fx.shape[0]} examples; give one "
                "label per example (a 1-D array)")
    return x_files, y_files


def row_starts(files: List[NpyFile]) -> np.ndarray:
    """The global number of each file's first row, then the total: (len(files) + 1,)."""
    return np.concatenate([[0], np.cumsum([f.shape[0] for f in files])]).astype(np.int64)


def is_shard_folder(path: Path) -> bool:
    return path.is_dir() and any(SHARD.fullmatch(p.name) for p in path.iterdir())
