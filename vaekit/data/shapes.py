"""``shapes``: dSprites-style 64x64 binary images with five known generative factors.

Like dSprites (Matthey et al. 2017, used in Higgins et al. 2017, "beta-VAE"), each image
shows one white sprite on black, and each image is fully described by five factors,
drawn independently and uniformly:

==========  ======  ==================================================
factor      values  meaning
==========  ======  ==================================================
shape       3       square, ellipse, heart (the labels ``y``)
scale       6       0.5 .. 1 in equal steps
rotation    40      2 pi k / 40 radians, counter-clockwise (k = 0..39)
x           32      sprite centre, left to right, 1.5 pixels apart
y           32      sprite centre, top to bottom, 1.5 pixels apart
==========  ======  ==================================================

The images are drawn here with numpy, nothing is downloaded: a pixel is on when a 4x4 grid
of points inside it falls at least half inside the sprite. Sprites always lie wholly inside
the frame. As in dSprites, a square looks the same after a quarter turn and an ellipse
after a half turn, so rotation is not fully identifiable from the image.

``shapes-color`` (names as below, ``shapes-color-N-seedS``) adds a sixth factor, ``color`` (6 values:
red, yellow, green, cyan, blue, magenta): the sprite is drawn in that colour on black, (3, 64, 64).

Names: ``shapes`` is 10,000 images drawn with seed 0; ``shapes-N`` is N images
(``shapes-50000``); ``shapes-N-seedS`` draws them with seed S (``shapes-2000-seed3``); a suffix
``-pxP`` (P = 32 or 16) shrinks the 64 px images to P px by averaging P/64-sized blocks of pixels, so
edges turn grey (``shapes-color-20000-px32``: a quarter of the pixels, for CPU runs). The
same name always gives the same images. The dataset has no official test split: the loader
holds out a random 20%. ``factors`` holds each image's factor *indices* (N, 5) as float32,
in the order above; ``extra["factor_names"]`` and ``extra["factor_sizes"]`` describe them.

Disentanglement metrics draw fresh observations with some factors held fixed through
:class:`ShapesGroundTruth` (``sample_factors``, ``render``); :func:`ground_truth_for` finds
it from a dataset name.
"""
from __future__ import annotations

import functools
import re
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import require
from .arrays import RawData

FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ["square", "ellipse", "heart"]
IMAGE_SIZE = 64
DEFAULT_SIZE = 10000
COMBINATIONS = int(np.prod(FACTOR_SIZES))  # 737,280: every combination of factor values
MAX_SIZE = 200_000  # rendered in memory: 3.3 GB as float32 at this size
STEP = 1.5  # pixels between neighbouring positions
MARGIN = (IMAGE_SIZE - STEP * (FACTOR_SIZES[3] - 1)) / 2  # 8.75: the first and last centres
SUPERSAMPLE = 4  # points per pixel side when deciding whether a pixel is on
REACH = 9  # a sprite lies within REACH - 0.25 pixels of its centre (largest: 8.5)
NAME = re.compile(r"shapes(-colou?r)?(?:-(\d+))?(?:-seed(\d+))?(?:-px(\d+))?")
SIDES = (64, 32, 16)  # -pxP: the 64 px rendering averaged over (64 / P)^2 blocks
# shapes-color: the sprite drawn in one of six fully saturated hues (a sixth factor, "color"), on black
COLORS = np.array([(1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 1, 1), (0, 0, 1), (1, 0, 1)], dtype=np.float32)
COLOR_NAMES = ["red", "yellow", "green", "cyan", "blue", "magenta"]


class FactorSpace:
    """Independent discrete factors, each uniform over ``range(size)``."""

    def __init__(self, factor_sizes: Sequence[int], factor_names: Optional[Sequence[str]] = None):
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.factor_names = tuple(factor_names or (f"factor_{i}" for i in range(len(self.factor_sizes))))

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor index vectors (n, F) int64, uniform and independent."""
        return rng.integers(0, self.factor_sizes, size=(int(n), self.num_factors))


class ShapesGroundTruth(FactorSpace):
    """The generator behind ``shapes``: factor indices (n, 5) -> images (n, 1, side, side), side 64 unless shrunk."""

    def __init__(self, side: int = IMAGE_SIZE):
        super().__init__(FACTOR_SIZES, FACTOR_NAMES)
        self.side = _check_side(side)

    def labels(self, factors: np.ndarray) -> np.ndarray:
        """The class label of each image: its shape index (n,) int64."""
        return np.asarray(factors)[:, 0].astype(np.int64)

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """Indices -> values (n, 5) float64: shape index, scale, angle in radians, and the
        centre's x and y in [0, 1] (dSprites' convention)."""
        f = np.asarray(factors, dtype=np.float64)
        sizes = np.array(FACTOR_SIZES, dtype=np.float64)
        return np.stack([f[:, 0], 0.5 + 0.5 * f[:, 1] / (sizes[1] - 1), 2 * np.pi * f[:, 2] / sizes[2],
                         f[:, 3] / (sizes[3] - 1), f[:, 4] / (sizes[4] - 1)], axis=1)

    def render(self, factors: np.ndarray) -> np.ndarray:
        """The images of ``factors`` (n, 5) indices: (n, 1, side, side) float32, values 0 or 1 at 64 px (block
        means below)."""
        f = np.asarray(factors).astype(np.int64)
        require(f.ndim == 2 and f.shape[1] == len(FACTOR_SIZES),
                f"shapes factors must have shape (n, {len(FACTOR_SIZES)}), got {f.shape}")
        require(bool(((f >= 0) & (f < np.array(FACTOR_SIZES))).all()),
                f"shapes factor indices must lie in 0..size-1 for sizes {FACTOR_SIZES}")
        bank = _sprites()
        col, px = _place(f[:, 3])
        row, py = _place(f[:, 4])
        key = ((f[:, 0] * FACTOR_SIZES[1] + f[:, 1]) * FACTOR_SIZES[2] + f[:, 2]) * 4 + px * 2 + py
        out = np.zeros((len(f), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        for i, (k, r, c) in enumerate(zip(key.tolist(), row.tolist(), col.tolist())):
            mask, dr, dc = bank[k]
            out[i, r + dr:r + dr + mask.shape[0], c + dc:c + dc + mask.shape[1]] = mask
        k = IMAGE_SIZE // self.side  # shrink: the mean of each k x k block (area resampling)
        out = out.reshape(len(f), self.side, k, self.side, k).mean(axis=(2, 4), dtype=np.float32) if k > 1 else out
        return out.astype(np.float32)[:, None]


class ColorShapesGroundTruth(ShapesGroundTruth):
    """The generator behind ``shapes-color``: factor indices (n, 6), the sixth the colour -> (n, 3, 64, 64)."""

    def __init__(self, side: int = IMAGE_SIZE):
        FactorSpace.__init__(self, FACTOR_SIZES + (len(COLORS),), FACTOR_NAMES + ("color",))
        self.side = _check_side(side)

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        f = np.asarray(factors)
        return np.concatenate([super().factor_values(f[:, :5]), f[:, 5:].astype(np.float64)], axis=1)

    def render(self, factors: np.ndarray) -> np.ndarray:
        f = np.asarray(factors).astype(np.int64)
        require(f.ndim == 2 and f.shape[1] == self.num_factors and bool(((f[:, 5] >= 0) & (f[:, 5] < len(COLORS))).all()),
                f"shapes-color factors must have shape (n, {self.num_factors}) with colours in 0..{len(COLORS) - 1}")
        return super().render(f[:, :5]) * COLORS[f[:, 5]][:, :, None, None]


def _check_side(side: int, name: str = "shapes") -> int:
    require(side in SIDES, f"{name}: the images come at {', '.join(map(str, SIDES))} px, got {side}; "
                           "e.g. shapes-color-px32")
    return int(side)


def _place(index: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Position indices -> (the pixel the centre falls in, which of the two sub-pixel phases)."""
    centre = MARGIN + STEP * index
    return np.floor(centre).astype(np.int64), (index % 2).astype(np.int64)


def _inside(shape: int, u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Whether points (u right, w up; pixels at scale 1) lie inside the upright ``shape``."""
    if shape == 0:  # square, side 12
        return np.maximum(np.abs(u), np.abs(w)) <= 6.0
    if shape == 1:  # ellipse, 16 x 9
        return (u / 8.0) ** 2 + (w / 4.5) ** 2 <= 1.0
    x, y = u / 6.36, w / 6.36 + 0.118  # heart (x^2 + y^2 - 1)^3 <= x^2 y^3, centred on its box
    return (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0


@functools.lru_cache(maxsize=1)
def _sprites() -> List[tuple]:
    """Every sprite at its anchor pixel, ``(mask, row offset, column offset)``, indexed by
    ((shape * 6 + scale) * 40 + rotation) * 4 + x phase * 2 + y phase; built once, when first asked for."""
    s = SUPERSAMPLE
    grid = (np.arange((2 * REACH + 1) * s) + 0.5) / s - REACH  # point offsets from the anchor pixel's corner
    phases = (MARGIN + STEP * np.arange(2)) % 1  # where the centre falls in its pixel: 0.75 (even), 0.25 (odd)
    bank = []
    for shape in range(FACTOR_SIZES[0]):
        for scale in 0.5 + 0.5 * np.arange(FACTOR_SIZES[1]) / (FACTOR_SIZES[1] - 1):
            for angle in 2 * np.pi * np.arange(FACTOR_SIZES[2]) / FACTOR_SIZES[2]:
                cos, sin = np.cos(angle), np.sin(angle)
                for fx in phases:
                    for fy in phases:
                        dx, dy = grid[None, :] - fx, grid[:, None] - fy  # image axes: right, down
                        u, w = (cos * dx - sin * dy) / scale, (-sin * dx - cos * dy) / scale
                        covered = _inside(shape, u, w).reshape(2 * REACH + 1, s, 2 * REACH + 1, s)
                        mask = covered.mean(axis=(1, 3)) >= 0.5  # (19, 19) pixels around the anchor
                        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                        bank.append((mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.uint8),
                                     int(rows[0]) - REACH, int(cols[0]) - REACH))
    return bank


def parse_name(source: str) -> Optional[Tuple[int, int, bool, int]]:
    """``(size, seed, color, side)`` for a shapes name ('shapes', 'shapes-50000', 'shapes-2000-seed3',
    'shapes-color-5000', 'shapes-color-20000-px32'), else None."""
    match = NAME.fullmatch(source.strip().lower().replace("_", "-"))
    if match is None:
        return None
    return (int(match.group(2) or DEFAULT_SIZE), int(match.group(3) or 0), bool(match.group(1)),
            int(match.group(4) or IMAGE_SIZE))


def shapes_name(size: int = DEFAULT_SIZE, seed: int = 0, color: bool = False, side: int = IMAGE_SIZE) -> str:
    """The canonical name of ``size`` images drawn with ``seed``: defaults are left out."""
    return ("shapes-color" if color else "shapes") + (f"-{size}" if size != DEFAULT_SIZE else "") + (
        f"-seed{seed}" if seed else "") + (f"-px{side}" if side != IMAGE_SIZE else "")


def ground_truth_for(name: Optional[str]) -> Optional[ShapesGroundTruth]:
    """The generator behind the dataset called ``name``, or None when it has none."""
    parsed = parse_name(name) if name else None
    if parsed is None:
        return None
    return ColorShapesGroundTruth(parsed[3]) if parsed[2] else ShapesGroundTruth(parsed[3])


def load_shapes(size: int = DEFAULT_SIZE, seed: int = 0, color: bool = False, side: int = IMAGE_SIZE) -> RawData:
    """``size`` shapes images drawn with ``seed``, their shape labels and factor indices; ``color``: the
    sprites in colour, with a sixth factor; ``side``: 64, or 32 / 16 for block means of the 64 px images."""
    name = f"dataset '{shapes_name(size, seed, color, side)}'"
    require(1 <= size <= MAX_SIZE, f"{name}: the size must be between 1 and {MAX_SIZE:,} (the images are "
                                   f"rendered in memory), got {size}; e.g. shapes-20000")
    _check_side(side, name)
    truth = ColorShapesGroundTruth(side) if color else ShapesGroundTruth(side)
    factors = truth.sample_factors(size, np.random.default_rng(seed))
    return RawData(name, "image", truth.render(factors), truth.labels(factors),
                   num_classes=len(SHAPE_NAMES), class_names=list(SHAPE_NAMES),
                   factors=factors.astype(np.float32),
                   extra={"factor_names": list(truth.factor_names), "factor_sizes": list(truth.factor_sizes),
                          "seed": seed})
