"""``patches``: random square crops of the real colour photographs that ship inside installed packages.

Sources, only files inside the installed packages (nothing is downloaded):

- scikit-learn's ``load_sample_images`` (``china.jpg``, ``flower.jpg``; scikit-learn is a core dependency);
- when scikit-image is installed, the colour photographs of ``skimage.data`` that are files in its wheel
  (:data:`SKIMAGE_PHOTOS`, each used only when the file is present: newer versions fetch some images on
  demand through pooch, and those are left out).

The split is by source photo: the photos are sorted by name and every fifth one, counting from the
last, (at least one) is the test photo, so no test crop comes from a training photo. Validation
crops are a random share of the training crops. ``n`` crops are drawn with ``seed``, uniformly in
position: a fifth from the test photos, the rest from the training photos, each photo giving an
equal share. The same name always gives the same crops.

Names: ``patches`` (32 x 32 crops, 5,000 of them, seed 0), ``patches-64`` (64 px), ``patches-64-n2000``
(2,000 crops), ``patches-32-n500-seed3``. Images are float32 (3, S, S) in [0, 1], unlabelled;
``extra["photos"]`` names the training and test photos.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..errors import require
from .arrays import RawData

DEFAULT_SIDE, DEFAULT_COUNT = 32, 5000
MIN_SIDE, MAX_SIDE = 8, 256
MAX_COUNT = 100_000
TEST_EVERY = 5
NAME = re.compile(r"patches(?:-(\d+))?(?:-n(\d+))?(?:-seed(\d+))?")
# colour photographs bundled in scikit-image's wheel (skimage/data/), where present
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "motorcycle_right.png", "immunohistochemistry.png", "retina.jpg", "hubble_deep_field.jpg")


def parse_patches(source: str) -> Optional[Tuple[int, int, int]]:
    """``(side, count, seed)`` for a patches name, else None."""
    match = NAME.fullmatch(source.strip().lower().replace("_", "-"))
    if match is None:
        return None
    return int(match.group(1) or DEFAULT_SIDE), int(match.group(2) or DEFAULT_COUNT), int(match.group(3) or 0)


def patches_name(side: int = DEFAULT_SIDE, count: int = DEFAULT_COUNT, seed: int = 0) -> str:
    return ("patches" + (f"-{side}" if side != DEFAULT_SIDE or count != DEFAULT_COUNT else "")
            + (f"-n{count}" if count != DEFAULT_COUNT else "") + (f"-seed{seed}" if seed else ""))


def photo_files() -> List[Path]:
    """The photographs available here, sorted by file name."""
    from sklearn.datasets import load_sample_images

    files = [Path(f) for f in load_sample_images().filenames]
    try:
        import skimage.data
    except ImportError:
        pass
    else:
        folder = Path(skimage.data.__file__).parent
        files += [folder / name for name in SKIMAGE_PHOTOS if (folder / name).is_file()]
    return sorted(files, key=lambda f: f.name)


def load_patches(side: int = DEFAULT_SIDE, count: int = DEFAULT_COUNT, seed: int = 0) -> RawData:
    name = f"dataset '{patches_name(side, count, seed)}'"
    require(MIN_SIDE <= side <= MAX_SIDE, f"{name}: the crop side must be between {MIN_SIDE} and {MAX_SIDE} "
                                          f"pixels, got {side}; e.g. patches-32 or patches-64")
    require(5 <= count <= MAX_COUNT, f"{name}: the number of crops must be between 5 and {MAX_COUNT:,}, got {count}; "
                                     "e.g. patches-32-n5000")
    photos = [(f, _read_rgb(f)) for f in photo_files()]
    test = [photos[i] for i in range(len(photos) - 1, -1, -TEST_EVERY)]
    train = [p for p in photos if all(p[0] != t[0] for t in test)]
    rng = np.random.default_rng(seed)
    n_test = max(1, count // TEST_EVERY)
    x, x_test = _crops(train, count - n_test, side, rng), _crops(test, n_test, side, rng)
    return RawData(name, "image", x, None, x_test, None,
                   extra={"photos": {"train": [f.name for f, _ in train], "test": [f.name for f, _ in test]},
                          "seed": seed, "levels": 256})


def _crops(photos: list, n: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` crops (n, 3, side, side) float32, an equal share (to one) from each photo, uniform in position."""
    out = np.empty((n, 3, side, side), dtype=np.float32)
    shares = np.diff(np.linspace(0, n, len(photos) + 1).round().astype(int))
    start = 0
    for (path, img), k in zip(photos, shares):
        h, w = img.shape[:2]
        require(h >= side and w >= side, f"photo '{path}' ({w}x{h}) is smaller than a {side}-pixel crop; "
                                         "choose a smaller crop, e.g. patches-32")
        rows, cols = rng.integers(0, h - side + 1, k), rng.integers(0, w - side + 1, k)
        for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
            out[start + i] = img[r:r + side, c:c + side].transpose(2, 0, 1)
        start += k
    return out / np.float32(255)


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32)
