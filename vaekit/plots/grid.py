"""Tile images into one array, and save such a grid as a PNG with Pillow."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from ..errors import VaekitError
from ..rundir import atomic_write
from .common import PathLike


def _as_images(images) -> np.ndarray:
    """(N, C, H, W) float array in [0, 1] from a tensor or array; (N, H, W) is read as grey."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().float().numpy()
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise VaekitError(f"cannot draw images of shape {tuple(arr.shape[1:])}: expected (C, H, W) with "
                          "1 (grey) or 3 (RGB) channels")
    if arr.shape[0] == 0:
        raise VaekitError("there are no images to draw")
    return np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0)


def image_grid(images, nrow: int = 8, pad_value: float = 1.0, scale: int = 1, gap: Optional[int] = None) -> np.ndarray:
    """Tile images (N, C, H, W) in [0, 1] row by row, ``nrow`` images per row.

    Cells are separated by ``gap`` pixels of ``pad_value`` (no outer border; by default
    :func:`grid_gap`, about a tenth of a cell, so that images that fill their cell still read
    as separate tiles); unused cells of a last, partial row are filled with ``pad_value``.
    ``scale`` enlarges each image by an integer factor (nearest neighbour) before tiling.
    Returns (rows*(H*scale+gap)-gap, cols*(W*scale+gap)-gap) for grey, with a trailing 3 for
    RGB. Values outside [0, 1] are clipped.
    """
    arr = _as_images(images)
    if nrow < 1 or scale < 1 or (gap is not None and gap < 0):
        raise VaekitError(f"nrow and scale must be at least 1 and gap at least 0, got nrow={nrow}, scale={scale}, "
                          f"gap={gap}")
    if scale > 1:
        arr = arr.repeat(scale, axis=2).repeat(scale, axis=3)
    n, c, h, w = arr.shape
    g = grid_gap(h, w) if gap is None else int(gap)
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.full((c, rows * (h + g) - g, cols * (w + g) - g), pad_value, dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[:, r * (h + g):r * (h + g) + h, k * (w + g):k * (w + g) + w] = arr[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def grid_gap(height: int, width: int) -> int:
    """The pixels between cells of ``height`` x ``width`` (already enlarged): a tenth of the longer
    side, at least 2."""
    return max(2, round(max(height, width) / 10))


def upscale_factor(height: int, width: int, min_cell: int = 64) -> int:
    """Smallest integer factor that makes the longer side of a cell at least ``min_cell`` pixels."""
    return max(1, math.ceil(min_cell / max(height, width)))


def eight_bit(grid: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped) as uint8 0..255, rounded."""
    return np.round(np.clip(grid, 0.0, 1.0) * 255).astype(np.uint8)


def display_pixels(grid: np.ndarray) -> np.ndarray:
    """A (H, W) grey or (H, W, 3) RGB grid in [0, 1] as (H, W, 3) uint8 for ``imshow``: matplotlib resamples
    8-bit RGB without a colour map, faster than float values through one, and the PNG holds 8 bits anyway."""
    pixels = eight_bit(grid)
    return np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels


def write_png(grid: np.ndarray, path: PathLike) -> Path:
    """Write a (H, W) grey or (H, W, 3) RGB array in [0, 1] as an 8-bit PNG, atomically."""
    image = Image.fromarray(eight_bit(grid))
    return atomic_write(Path(path), lambda tmp: image.save(tmp, format="PNG"))


def save_image_grid(images, path: PathLike, nrow: int = 8, min_cell: int = 64, pad_value: float = 1.0) -> Path:
    """Save ``image_grid(images, nrow)`` as a PNG, small images enlarged to >= ``min_cell`` px per cell.

    An 8x8 digit becomes a 64x64 cell with 6 px between cells, so 64 digits with nrow=8 make a
    554x554 PNG.
    """
    arr = _as_images(images)
    scale = upscale_factor(arr.shape[2], arr.shape[3], min_cell)
    return write_png(image_grid(arr, nrow, pad_value, scale), path)
