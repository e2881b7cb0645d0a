"""A folder of PNG/JPEG/WebP images: class sub-folders become labels, a flat folder is unlabelled.

    flat/a.png, flat/b.png              -> unlabelled
    classes/cat/1.png, classes/dog/2.png -> labels 0 (cat), 1 (dog); class_names sorted

Each file goes through one deterministic :class:`ImageTransform` (``--image-size``, ``--channels``;
see :mod:`vaekit.data.image_decode` for how each kind of file is read). Without a size and a channel
count the images must already share them: grayscale -> C=1, RGB -> C=3, grayscale+alpha -> C=2,
RGBA -> C=4. Every header is read before any pixels, so a folder of mixed sizes fails at once.
A bad file (empty, not an image, truncated, 1 pixel wide) stops loading with its name, or with
``skip_bad`` (``--skip-bad-images``) is left out and listed in ``extra["skipped_images"]``.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..errors import VaekitError, require
from .arrays import RawData, to_images
from .image_decode import BadImage, ImageTransform, decode_image, header_shape

FIX_SHAPES = ("pass --image-size S (or HxW) to resize and centre-crop every image to one size, and --channels 1 "
              "or 3 to convert every image to grayscale or RGB (or resize and convert the files yourself)")
REPORTED = 20  # skipped files named in the notice and in the run's config


@functools.cache
def image_suffixes() -> Tuple[str, ...]:
    """.png, .jpg, .jpeg, and .webp when this Pillow reads WebP."""
    from PIL import features

    return (".png", ".jpg", ".jpeg") + ((".webp",) if features.check("webp") else ())


def list_images(folder: Path, name: str) -> Tuple[List[Path], Optional[np.ndarray], Optional[list]]:
    """``(files, labels or None, class names or None)`` of an image folder (one level of class sub-folders)."""
    suffixes = "/".join(image_suffixes())
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    top_images = [p for p in entries if _is_image(p)]
    class_dirs = [p for p in entries if p.is_dir()]
    if class_dirs and top_images:
        raise VaekitError(
            f"folder {name} mixes images ('{top_images[0].name}', ...) with sub-folders "
            f"('{class_dirs[0].name}', ...); "
            "put all images in class sub-folders (labelled) or all directly in the folder (unlabelled)"
        )
    if not class_dirs:
        require(top_images, f"folder {name} holds no {suffixes} images, class sub-folders "
                            "or IDX files; point to a folder of images or to a data file")
        return top_images, None, None
    files, labels = [], []
    for label, d in enumerate(class_dirs):
        images = sorted(p for p in d.iterdir() if _is_image(p) and not p.name.startswith("."))
        require(images, f"class folder '{d}' holds no {suffixes} images; add images or remove it")
        files += images
        labels += [label] * len(images)
    return files, np.array(labels, dtype=np.int64), [d.name for d in class_dirs]


def is_image_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding images, directly or in class sub-folders."""
    if not path.is_dir():
        return False
    try:
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
        return any(_is_image(p) for p in entries) or any(
            p.is_dir() and any(_is_image(q) for q in p.iterdir()) for p in entries)
    except OSError:  # the reader says what is wrong
        return False


def scan_headers(files: List[Path], labels: Optional[np.ndarray], transform: ImageTransform, name: str,
                 skip_bad: bool) -> tuple:
    """``(files, labels, shape, skipped)``: every file's header read, the bad ones left out (``skip_bad``)
    or refused, and all shapes under ``transform`` checked to be one."""
    shapes, keep, skipped = [], [], []
    for i, path in enumerate(files):
        try:
            shapes.append(header_shape(path, transform))
            keep.append(i)
        except BadImage as bad:
            if not skip_bad:
                raise
            skipped.append(bad)
    require(keep, f"every image in {name} is bad ({_listed(skipped)}); replace them")
    first = shapes[0]
    for i, shape in zip(keep, shapes):
        if shape != first:
            raise VaekitError(
                f"images in {name} differ in size or color mode: '{files[i]}' is {_describe(shape)} but "
                f"'{files[keep[0]]}' is {_describe(first)}; {FIX_SHAPES}")
    kept = [files[i] for i in keep]
    return kept, None if labels is None else labels[keep], first, skipped


def read_image_folder(folder: Path, name: str, transform: ImageTransform = ImageTransform(),
                      skip_bad: bool = False) -> RawData:
    """Read every image under ``folder`` into memory through ``transform``."""
    files, labels, class_names = list_images(folder, name)
    files, labels, shape, skipped = scan_headers(files, labels, transform, name, skip_bad)
    x = np.empty((len(files),) + shape, dtype=np.float32)  # (N, C, H, W)
    good = np.ones(len(files), dtype=bool)
    for i, path in enumerate(files):
        try:
            x[i] = decode_image(path, transform)
        except BadImage as bad:  # pixels that cannot be decoded: a truncated file
            if not skip_bad:
                raise
            skipped.append(bad)
            good[i] = False
    require(good.any(), f"every image in {name} is bad ({_listed(skipped)}); replace them")
    if not good.all():
        x, labels = x[good], None if labels is None else labels[good]
    return RawData(name, "image", to_images(x, name), labels,
                   num_classes=None if class_names is None else len(class_names),
                   class_names=class_names, extra={"path": str(folder), **image_extra(transform, skipped, name)})


def image_extra(transform: ImageTransform, skipped: List[BadImage], name: str) -> dict:
    """What an image folder adds to its DataInfo's ``extra``: the transform, and the skipped files
    (reported on stderr as they are left out)."""
    extra = {"transform": transform.to_dict()} if transform.active else {}
    if skipped:
        print(f"vaekit: left out {len(skipped)} bad image(s) of {name} (--skip-bad-images): {_listed(skipped)}",
              file=sys.stderr)
        extra["skipped_images"] = {"count": len(skipped),
                                   "files": [f"{bad.path}: {bad.reason}" for bad in skipped[:REPORTED]]}
    return extra


def _listed(skipped: List[BadImage]) -> str:
    shown = "; ".join(f"'{bad.path}': {bad.reason}" for bad in skipped[:REPORTED])
    return shown + (f"; and {len(skipped) - REPORTED} more" if len(skipped) > REPORTED else "")


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in image_suffixes() and path.is_file()


def _describe(shape: tuple) -> str:
    c, h, w = shape
    return f"{w}x{h} with {c} channel{'s' if c > 1 else ''}"
