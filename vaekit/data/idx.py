"""Reader for IDX files, the format of MNIST and Fashion-MNIST (gzip-compressed or raw).

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of
dimensions, one big-endian uint32 size per dimension, then the values in C order, big-endian.
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import VaekitError

# type code -> numpy dtype (big-endian where it matters)
IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC = 0x0803  # uint8, 3 dims: (N, H, W)
LABELS_MAGIC = 0x0801  # uint8, 1 dim: (N,)


def read_idx(path: Path) -> np.ndarray:
    """Return the array stored in IDX file ``path`` (gzip detected by its magic bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise VaekitError(f"could not read IDX file '{path}': {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise VaekitError(
                f"IDX file '{path}' is a corrupt or truncated gzip file ({e}); "
                "delete it and download or copy it again"
            ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise VaekitError(
            f"'{path}' is not an IDX file: it starts with bytes {raw[:4].hex() or '(none)'}, "
            "expected 0000 followed by a type code (08 for uint8) and a dimension count; "
            "check that this is an MNIST-style train-/t10k- images or labels file"
        )
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise VaekitError(f"IDX file '{path}' is truncated inside its header; download or copy it again")
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    count = math.prod(dims)
    expected, found = count * dtype.itemsize, len(raw) - start
    if found != expected:
        raise VaekitError(
            f"IDX file '{path}' is truncated or corrupt: its header says shape {tuple(dims)} "
            f"({expected} bytes of data) but it holds {found} bytes; download or copy it again"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=start).reshape(dims)
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
