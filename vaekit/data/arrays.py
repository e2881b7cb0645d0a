"""Turn raw numpy arrays into checked examples: images (N, C, H, W) in [0, 1] or tables (N, D).

Every reader (named datasets, .npy/.npz, image folders, CSV, IDX) ends here, so the rules
for shapes, value ranges, NaN/Inf and labels live in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import VaekitError, require

MAX_CLASSES = 100_000  # class indices above this are corrupt labels, not classes (ImageNet-21k has 21,841)


@dataclass
class RawData:
    """A dataset as read from disk, before splitting and normalization."""

    name: str  # how messages name the data, e.g. "'runs/x.npz'" or "dataset 'mnist'"
    kind: str  # "image" or "table"
    x: np.ndarray  # float32 (N, C, H, W) in [0, 1] or (N, D)
    y: Optional[np.ndarray] = None  # int64 (N,)
    x_test: Optional[np.ndarray] = None  # an official test split, same layout as x
    y_test: Optional[np.ndarray] = None
    num_classes: Optional[int] = None
    class_names: Optional[list] = None
    columns: Optional[list] = None
    factors: Optional[np.ndarray] = None  # float32 (N, F): known generative factors (``shapes``)
    factors_test: Optional[np.ndarray] = None
    covariates: Optional[dict] = None  # {name: values (N,)}, coded in load_data (:mod:`vaekit.data.covariates`)
    extra: dict = field(default_factory=dict)  # factor names go in extra["factor_names"]


def to_examples(arr: np.ndarray, name: str) -> tuple:
    """Return ``(x, kind)`` for an array read from a file, choosing image or table by shape
    (see :func:`example_layout`)."""
    arr = np.asarray(arr)
    _require_numeric(arr, name)
    require_examples(arr.shape, name)
    layout = example_layout(arr.shape, name)
    if layout == "table":
        return to_table(arr, name), "table"
    return to_images(channels_first(arr, layout), name), "image"


def require_examples(shape: tuple, name: str) -> None:
    """An array needs at least one example."""
    require(len(shape) >= 1 and int(np.prod(shape)) > 0,
            f"{name} is empty (array shape {tuple(shape)}); it needs at least one example")


def example_layout(shape: tuple, name: str) -> str:
    """How an array of ``shape`` holds examples: "table" (N, D), "nhw" (N, H, W) images,
    "nchw" (N, C, H, W) with C <= 4, or "nhwc" (N, H, W, C) with C in {1, 3, 4} and H, W > 4."""
    shape = tuple(shape)
    if len(shape) == 1:
        raise VaekitError(
            f"{name} is a 1-D array of shape {shape}; examples need at least one feature: "
            "reshape it to (N, 1) for a one-column table, or (N, H, W) for images"
        )
    if len(shape) == 2:
        return "table"
    if len(shape) == 3:
        return "nhw"
    if len(shape) == 4:
        n, a, h, w = shape
        if 1 <= a <= 4:
            return "nchw"
        if w in (1, 3, 4) and a > 4 and h > 4:
            return "nhwc"
    raise VaekitError(
        f"{name} has shape {shape}, which is not a layout vaekit understands; use (N, D) for a "
        "table, (N, H, W) or (N, C, H, W) with C <= 4 or (N, H, W, C) with C in 1, 3, 4 for images"
    )


def channels_first(arr: np.ndarray, layout: str) -> np.ndarray:
    """Images of an :func:`example_layout` as (N, C, H, W)."""
    if layout == "nhw":
        return arr[:, None]
    if layout == "nhwc":
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
    return arr


def to_images(arr: np.ndarray, name: str) -> np.ndarray:
    """Scale channels-first images (N, C, H, W) to float32 in [0, 1] and check them."""
    _require_numeric(arr, name)
    if arr.dtype.kind == "b":
        return scale_images(arr, "cast")
    if arr.dtype.kind in "iu":
        return scale_images(arr, image_scale(arr.dtype, arr.shape, int(arr.min()), int(arr.max()), name))
    x = finite_float32(arr, name)
    return scale_images(x, image_scale(arr.dtype, arr.shape, float(x.min()), float(x.max()), name))


def image_scale(dtype: np.dtype, shape: tuple, lo, hi, name: str) -> str:
    """How images whose values lie in [lo, hi] become [0, 1]: "cast" (bool, 0/1 integers, floats in
    [0, 1]) or "255" (8-bit integers); a VaekitError for other ranges."""
    if dtype.kind == "b":
        return "cast"
    if dtype.kind in "iu" and lo >= 0 and hi <= 1:  # binary images, whatever the integer type
        return "cast"
    if dtype.kind in "iu" and lo >= 0 and hi <= 255:
        return "255"
    if dtype.kind == "f" and lo >= 0 and hi <= 1:
        return "cast"
    raise _range_error(name, dtype, shape, lo, hi)


def scale_images(arr: np.ndarray, scale: str) -> np.ndarray:
    """Apply an :func:`image_scale` to (part of) an array: float32 values in [0, 1]."""
    if scale == "255":
        return np.true_divide(arr, np.float32(255), dtype=np.float32)
    return arr.astype(np.float32, copy=arr.dtype.kind != "f")


def quantization_levels(x: np.ndarray) -> Optional[int]:
    """How many evenly spaced values images in [0, 1] were quantized to: 2 (binary), 256 (8-bit,
    x = k / 255), or None (other float data). Bits per dimension need it (Theis et al. 2016)."""
    for levels in (2, 256):
        scaled = x * np.float32(levels - 1)
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-3):
            return levels
    return None


def to_table(arr: np.ndarray, name: str, columns: Optional[Sequence[str]] = None,
             row_numbers: Optional[np.ndarray] = None) -> np.ndarray:
    """Return a float32 table (N, D), checked for NaN/Inf."""
    _require_numeric(arr, name)
    return finite_float32(np.asarray(arr), name, columns=columns, row_numbers=row_numbers)


def finite_float32(arr: np.ndarray, name: str, **where) -> np.ndarray:
    """``arr`` as float32, checked: no NaN/Inf (see :func:`check_finite`, which takes ``where``), and
    no finite value too large for float32 (it would become Inf)."""
    with np.errstate(over="ignore"):
        x = arr.astype(np.float32, copy=False)
    if x.dtype != arr.dtype and arr.dtype.kind == "f" and np.isinf(x).any():
        big = np.isinf(x) & np.isfinite(arr)
        if big.any():
            raise VaekitError(f"{name} has {int(big.sum())} value(s) beyond float32's range (|x| > 3.4e38), "
                              f"such as {arr[big].flat[0]:g}; vaekit computes in float32: rescale the data")
    check_finite(x, name, **where)
    return x


def check_finite(x: np.ndarray, name: str, *, columns: Optional[Sequence[str]] = None,
                 row_numbers: Optional[np.ndarray] = None) -> None:
    """Raise a VaekitError saying how many NaN/Inf values ``x`` holds and where.

    ``row_numbers`` maps example index -> the number shown to the user (a CSV line).
    """
    if x.dtype.kind != "f":
        return
    bad = ~np.isfinite(x)
    if not bad.any():
        return
    n_nan = int(np.isnan(x).sum())
    n_inf = int(bad.sum()) - n_nan
    rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
    csv_rows = row_numbers is not None
    shown = ", ".join(map(str, (np.asarray(row_numbers)[rows[:5]] if csv_rows else rows[:5])))
    more = ", ..." if len(rows) > 5 else ""
    where = f"{len(rows)} {'row' if csv_rows else 'example'}(s) ({'lines' if csv_rows else 'indices'} {shown}{more})"
    if columns is not None and x.ndim == 2:
        cols = [str(columns[j]) for j in np.flatnonzero(bad.any(axis=0))]
        where += " in column(s) " + ", ".join(f"'{c}'" for c in cols[:10]) + (", ..." if len(cols) > 10 else "")
    raise VaekitError(
        f"{name} has {n_nan} NaN/missing and {n_inf} infinite value(s) in {where}; "
        "clean the data first (drop those examples or fill in the values)"
    )


def encode_labels(parts: Sequence[np.ndarray], sizes: Sequence[int], name: str) -> tuple:
    """Return ``(codes, num_classes, class_names)`` for label arrays sharing one class list.

    Strings become codes by their sorted unique values (``class_names``); integers (or
    integral floats) are kept and must be >= 0, with ``num_classes = max + 1``.
    """
    parts = [np.asarray(p) for p in parts]
    for p, n in zip(parts, sizes):
        require(p.ndim == 1, f"labels of {name} have shape {p.shape}; labels must be a 1-D array (N,)")
        require(len(p) == n, f"{name} has {n} examples but {len(p)} labels; give exactly one label per example")
    kinds = {p.dtype.kind for p in parts}
    if kinds & set("USO"):
        strings = [p.astype(str) for p in parts]
        class_names = sorted(set().union(*(set(s.tolist()) for s in strings)))
        lookup = {c: i for i, c in enumerate(class_names)}
        codes = [np.array([lookup[v] for v in s.tolist()], dtype=np.int64) for s in strings]
        return codes, len(class_names), class_names
    require(kinds <= set("biuf"), f"labels of {name} have an unsupported type; use integers or strings")
    for p in parts:
        if p.dtype.kind == "f":
            ok = np.isfinite(p).all() and (p == np.round(p)).all()
            require(ok, f"labels of {name} are not whole numbers; labels must be integer class indices or names")
    # checked before the cast to int64, which would wrap or warn on values out of its range
    lo = min(p.min().item() for p in parts if len(p))
    require(lo >= 0, f"labels of {name} include {lo}; class indices must be >= 0")
    hi = max(p.max().item() for p in parts if len(p))
    require(hi < MAX_CLASSES, f"labels of {name} go up to {hi}, but class indices must be below {MAX_CLASSES} "
                              "(a model holds one output per class); number the classes 0, 1, 2, ...")
    return [p.astype(np.int64) for p in parts], int(hi) + 1, None


def _require_numeric(arr: np.ndarray, name: str) -> None:
    require_numeric_dtype(arr.dtype, name)


def require_numeric_dtype(dtype: np.dtype, name: str) -> None:
    require(
        dtype.kind in "biuf",
        f"{name} holds values of type {dtype}, not numbers; convert it to a numeric array "
        "(labels belong in a separate 'y' array or a CSV label column)",
    )


def _range_error(name: str, dtype: np.dtype, shape: tuple, lo: float, hi: float) -> VaekitError:
    return VaekitError(
        f"{name} looks like images (shape {tuple(shape)}, dtype {dtype}) but its values lie in "
        f"[{lo:g}, {hi:g}]; image values must lie in [0, 1] (or 0..255 as integers): scale it to "
        "[0, 1], or reshape it to (N, D) to use it as a table"
    )
