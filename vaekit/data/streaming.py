"""When data streams from disk, and loading it that way: checks and statistics in chunks, splits as
row lists.

The rule: a .npy file, a folder of .npy shards or a folder of images streams when its examples as
float32 would take more than :func:`stream_threshold` bytes (a quarter of this machine's memory, at
most 2 GiB); ``stream=True`` / ``False`` (CLI ``--stream`` / ``--no-stream``) decides instead. Other
sources (named datasets, .npz, CSV) are always loaded in memory. Image folders stream through
:mod:`vaekit.data.image_stream`, decoded in worker processes. Streaming changes
where the numbers come from, never what they are: splits, conversion and normalization are
the ones :func:`load_data` uses in memory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import torch

from ..errors import VaekitError, require
from .arrays import encode_labels, example_layout, finite_float32, image_scale, require_examples
from .image_decode import ImageTransform, header_shape
from .arrow_table import is_arrow_file
from .format_stream import format_values
from .h5ad import is_h5ad
from .image_folder import is_image_folder, list_images
from .mapped import MappedData, RowSource
from .npy_reader import NpyFile, is_shard_folder, row_starts, shard_files
from .splits import TEST_FRACTION, TEST_SEED, random_test_split, split_indices

MAX_IN_MEMORY = 2 << 30


def stream_threshold() -> int:
    """Float32 bytes above which .npy data streams: a quarter of physical memory, at most 2 GiB."""
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        ram = 4 * MAX_IN_MEMORY
    return min(MAX_IN_MEMORY, ram // 4)


def streamable(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".npy" or is_shard_folder(path) or is_arrow_file(path) \
        or is_h5ad(path)


def open_arrays(path: Path, name: str) -> tuple:
    """``(x files, y files or None)`` of a .npy file or a folder of shards."""
    if path.is_dir():
        return shard_files(path, name)
    return [NpyFile(path, name)], None


def should_stream(path: Path, name: str, stream: Optional[bool],
                  transform: ImageTransform = ImageTransform()) -> bool:
    """Whether ``path`` is streamed (see the module's rule)."""
    images = not streamable(path) and is_image_folder(path)
    if stream is not None:
        require(not stream or streamable(path) or images,
                f"{name} cannot be streamed: streaming reads a .npy file, a folder of .npy shards "
                "(x-0.npy, x-1.npy, ...), a Parquet/Feather table, an .h5ad file or a folder of images; convert the "
                "data to .npy, or load it without --stream")
        return bool(stream)
    if images:
        return image_folder_bytes(path, name, transform) > stream_threshold()
    if not streamable(path):
        return False
    try:
        values = format_values(path, name[1:-1])
        if values is None:
            files, _ = open_arrays(path, name)
            values = sum(f.shape[0] for f in files) * int(np.prod(files[0].shape[1:]))
    except VaekitError:  # a broken file: the in-memory reader says what is wrong, as it always has
        return False
    return values * 4 > stream_threshold()


def image_folder_bytes(path: Path, name: str, transform: ImageTransform) -> int:
    """The float32 bytes of a folder of images: its file count times the first image's size."""
    try:
        files, _, _ = list_images(path, name)
        return len(files) * int(np.prod(header_shape(files[0], transform))) * 4
    except VaekitError:  # a bad folder or first file: the in-memory reader says what is wrong
        return 0


def scan_images(source: RowSource, n: int, shape: tuple, name: str) -> str:
    """The :func:`image_scale` of the whole dataset, from its min and max read in chunks (floats
    are checked for NaN/Inf on the way)."""
    dtype = source.files[0].dtype
    if dtype.kind == "b":
        return "cast"
    lo = hi = None
    for start in range(0, n, source.chunk_rows()):
        raw = source.raw(np.arange(start, min(n, start + source.chunk_rows())))
        if dtype.kind == "f":
            raw = finite_float32(raw, f"{name} (examples {start} on)")
        cast = int if dtype.kind in "iu" else float
        lo = cast(raw.min()) if lo is None else min(lo, cast(raw.min()))
        hi = cast(raw.max()) if hi is None else max(hi, cast(raw.max()))
    return image_scale(dtype, shape, lo, hi, name)


def column_stats(chunks: Iterable[torch.Tensor]) -> tuple:
    """Per-column mean and std (no correction) over the rows of all ``chunks``, in float64, as lists;
    constant columns get std 1. One chunk is computed exactly as torch computes it; several are
    merged with Chan, Golub & LeVeque's pairwise update (1979)."""
    n, mean, m2, first, parts = 0, None, None, None, 0
    for c in chunks:
        c, parts = c.double(), parts + 1
        first = c if parts == 1 else None
        k = c.shape[0]
        c_var, c_mean = torch.var_mean(c, dim=0, correction=0)  # no (k, D) temporaries beside c
        c_m2 = c_var * k
        if n == 0:
            mean, m2 = c_mean, c_m2
        else:
            delta = c_mean - mean
            mean = mean + delta * (k / (n + k))
            m2 = m2 + c_m2 + delta ** 2 * (n * k / (n + k))
        n += k
    if parts == 1:
        mean, std = first.mean(dim=0), first.std(dim=0, correction=0)
    else:
        std = (m2 / n).sqrt()
    std[std == 0] = 1.0  # constant columns: centre only
    return mean.tolist(), std.tolist()


def read_labels(y_files, n: int, name: str) -> tuple:
    """``(labels (N,) int64 or None, num_classes, class_names)`` of the y shards."""
    if not y_files:
        return None, None, None
    y = np.concatenate([f.read_all() for f in y_files])
    codes, num_classes, class_names = encode_labels([y], [n], name)
    return torch.from_numpy(codes[0]).long(), num_classes, class_names


def streamed_splits(source: RowSource, y, val_fraction: float, seed: int) -> tuple:
    """``(train, val, test, test_split)``: the same hold-outs :func:`load_data` makes in memory."""
    n = int(source.starts[-1])
    pick = lambda t, i: None if t is None else t[i]  # noqa: E731
    keep, held = split_indices(n, TEST_FRACTION, TEST_SEED, y)
    y_keep = pick(y, keep)
    k2, h2 = split_indices(len(keep), val_fraction, seed, y_keep)
    test_split = random_test_split(y is not None)
    train = MappedData(source, keep[k2], pick(y_keep, k2))
    val = MappedData(source, keep[h2], pick(y_keep, h2))
    test = MappedData(source, held, pick(y, held))
    return train, val, test, test_split


def open_source(path: Path, name: str) -> tuple:
    """``(RowSource without its scale and info, labels, num_classes, class_names, kind, shape)``:
    everything about the data that needs no pass over it, checked."""
    files, y_files = open_arrays(path, name)
    starts = row_starts(files)
    full = (int(starts[-1]), *files[0].shape[1:])
    require_examples(full, name)
    layout = example_layout(full, name)
    kind = "table" if layout == "table" else "image"
    shape = full[1:]
    if layout == "nhw":
        shape = (1, *shape)
    elif layout == "nhwc":
        shape = (shape[2], shape[0], shape[1])
    y, num_classes, class_names = read_labels(y_files, full[0], name)
    return RowSource(files, starts, layout, None, name=name), y, num_classes, class_names, kind, shape


def levels_sample(source: RowSource, n: int, values: int = 1_000_000) -> np.ndarray:
    """The first ``values`` values of the converted dataset, in order (what the in-memory
    quantization check looks at)."""
    per_row = int(np.prod(source.files[0].shape[1:]))
    rows = np.arange(min(n, -(-values // per_row)))
    return source.examples(rows, normalize=False).numpy().reshape(-1)[:values]


def scan_table(source: RowSource, n: int, name: str, counts: bool = False) -> bool:
    """A table's NaN/Inf (and float32 range) check, chunk by chunk; with ``counts``, whether all values are
    counts (whole and >= 0)."""
    step = source.chunk_rows()
    for start in range(0, n, step):
        x = finite_float32(source.raw(np.arange(start, min(n, start + step))), f"{name} (examples {start} on)")
        counts = counts and bool((x >= 0).all() and (x == np.round(x)).all())
    return counts


def train_stats(train: MappedData) -> tuple:
    """Mean and std of the training split's columns, read in chunks."""
    step = train.source.chunk_rows()
    chunks = (train.source.examples(train.rows[i:i + step].numpy(), normalize=False)
              for i in range(0, len(train), step))
    return column_stats(chunks)
