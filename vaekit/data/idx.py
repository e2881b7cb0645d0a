"""Reader for IDX files, the format of MNIST and Fashion-MNIST (gzip-compressed or raw).

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of
dimensions, one big-endian uint32 size per dimension, then the values in C order, big-endian.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import VaekitError

# type code -> numpy dtype (big-endian where it matters)
IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC = 0x0803  # uint8, 3 dims: (N, H, W)
LABELS_MAGIC = 0x0801  # uint8, 1 dim: (N,)
MAX_INFLATION = 1032  # gzip (deflate) decompresses to at most this many times its size


def read_idx(path: Path) -> np.ndarray:
    """Return the array stored in IDX file ``path`` (gzip detected by its magic bytes). The header's
    shape is checked against the file's size before the data is read."""
    path, gz = Path(path), False
    try:
        with open(path, "rb") as f:
            size, gz = os.fstat(f.fileno()).st_size, f.read(2) == b"\x1f\x8b"
            f.seek(0)
            with (gzip.GzipFile(fileobj=f) if gz else f) as data:
                try:
                    return _read_idx(data, path, size * MAX_INFLATION if gz else size)
                except VaekitError:
                    while gz and data.read(1 << 20):  # a broken gzip stream explains a bad header best
                        pass
                    raise
    except PermissionError:  # said by data.files.readable
        raise
    except (OSError, EOFError, zlib.error) as e:
        if gz and not isinstance(e, IsADirectoryError):
            raise VaekitError(f"IDX file '{path}' is a corrupt or truncated gzip file ({e}); "
                              "delete it and download or copy it again") from None
        raise VaekitError(f"could not read IDX file '{path}': {getattr(e, 'strerror', None) or e}") from None


def _read_idx(f, path: Path, limit: int) -> np.ndarray:
    """The array of the IDX stream ``f``, which holds at most ``limit`` bytes."""
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES or head[3] == 0:
        raise VaekitError(
            f"'{path}' is not an IDX file: it starts with bytes {head.hex() or '(none)'}, "
            "expected 0000 followed by a type code (08 for uint8) and a dimension count; "
            "check that this is an MNIST-style train-/t10k- images or labels file"
        )
    ndim = head[3]
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise VaekitError(f"IDX file '{path}' is truncated inside its header; download or copy it again")
    dims = struct.unpack(f">{ndim}I", sizes)
    if 0 in dims:  # no data; and numpy cannot even make an empty array of, say, shape (2**30, 0, 2**40)
        raise VaekitError(f"IDX file '{path}' holds no data: its header says shape {tuple(dims)}; "
                          "download or copy it again")
    dtype = np.dtype(IDX_TYPES[head[2]])
    count = math.prod(dims)
    expected = count * dtype.itemsize
    fits = expected + 4 + 4 * ndim <= limit
    data = f.read(expected + 1) if fits else b""  # never more than the file can hold
    if len(data) != expected:
        held = f"{len(data)} bytes" if fits else f"at most {limit - 4 - 4 * ndim} bytes"
        raise VaekitError(
            f"IDX file '{path}' is truncated or corrupt: its header says shape {tuple(dims)} "
            f"({expected} bytes of data) but it holds {held}; download or copy it again"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def magic_of(arr: np.ndarray) -> int:
    """The IDX magic number (type code and dimension count) ``arr`` would be stored with."""
    codes = {("u", 1): 0x08, ("i", 1): 0x09, ("i", 2): 0x0B, ("i", 4): 0x0C, ("f", 4): 0x0D, ("f", 8): 0x0E}
    key = (arr.dtype.kind, arr.dtype.itemsize)
    if key not in codes:
        raise VaekitError(f"IDX files cannot hold {arr.dtype} values; use uint8, int8/16/32 or float32/64")
    return (codes[key] << 8) | arr.ndim


def write_idx(path: Path, arr: np.ndarray, *, compress: bool = False) -> None:
    """Write ``arr`` as an IDX file (used by tests and to convert data for other tools)."""
    arr = np.ascontiguousarray(arr)
    big = arr.astype(arr.dtype.newbyteorder(">"), copy=False) if arr.dtype.itemsize > 1 else arr
    payload = struct.pack(">I", magic_of(arr)) + struct.pack(f">{arr.ndim}I", *arr.shape) + big.tobytes()
    Path(path).write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
