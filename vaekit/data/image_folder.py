"""A folder of PNG/JPEG images: class sub-folders become labels, a flat folder is unlabelled.

    flat/a.png, flat/b.png              -> unlabelled
    classes/cat/1.png, classes/dog/2.png -> labels 0 (cat), 1 (dog); class_names sorted

All images must share one size and channel count: grayscale -> C=1, RGB -> C=3,
grayscale+alpha -> C=2, RGBA -> C=4. 16-bit grayscale PNGs are scaled by 1/65535.
"""
from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np

from ..errors import VaekitError, require
from .arrays import RawData, to_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# pixels per image (4096 x 4096), read from its header before it is decoded: a few bytes of a crafted
# PNG or GIF may claim up to PIL's own limit (89 M pixels), several GB once decoded as float32
MAX_PIXELS = 1 << 24


def read_image_folder(folder: Path, name: str) -> RawData:
    """Read every image under ``folder`` (one level of class sub-folders at most)."""
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
        require(top_images, f"folder {name} holds no {'/'.join(IMAGE_SUFFIXES)} images, class sub-folders "
                            "or IDX files; point to a folder of images or to a data file")
        files, labels, class_names = top_images, None, None
    else:
        files, labels = [], []
        for label, d in enumerate(class_dirs):
            images = sorted(p for p in d.iterdir() if _is_image(p) and not p.name.startswith("."))
            require(images, f"class folder '{d}' holds no {'/'.join(IMAGE_SUFFIXES)} images; add images or remove it")
            files += images
            labels += [label] * len(images)
        labels = np.array(labels, dtype=np.int64)
        class_names = [d.name for d in class_dirs]

    first = _read_image(files[0])
    x = np.empty((len(files),) + first.shape, dtype=np.float32)  # (N, C, H, W)
    x[0] = first
    for i, path in enumerate(files[1:], start=1):
        img = _read_image(path)
        if img.shape != first.shape:
            raise VaekitError(
                f"images in {name} differ in size or color mode: '{path}' is {_describe(img.shape)} but "
                f"'{files[0]}' is {_describe(first.shape)}; all images must have the same size and "
                "color mode (resize them, and convert all to grayscale or all to RGB)"
            )
        x[i] = img
    return RawData(name, "image", to_images(x, name), labels,
                   num_classes=None if class_names is None else len(class_names),
                   class_names=class_names, extra={"path": str(folder)})


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _read_image(path: Path) -> np.ndarray:
    """One image as float32 (C, H, W) in [0, 1]."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's notes on odd chunks or metadata are not the user's concern
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                require(im.width * im.height <= MAX_PIXELS,
                        f"image '{path}' is too large to load ({im.width}x{im.height} pixels, more than the "
                        f"{MAX_PIXELS} vaekit loads in one image); shrink it, or replace or remove that file")
                return _as_array(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise VaekitError(f"image '{path}' is too large to load ({e}); shrink it, or replace or remove "
                          "that file") from None
    except PermissionError:  # said by data.files.readable
        raise
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as e:  # PIL's errors for a broken file
        raise VaekitError(f"could not read image '{path}' ({e}); replace or remove that file") from None


def _as_array(im) -> np.ndarray:
    """An open PIL image as float32 (C, H, W) in [0, 1]."""
    im.load()
    if im.mode.startswith("I;16"):
        arr = np.asarray(im, dtype=np.float32) / 65535.0
    else:
        if im.mode == "1":
            im = im.convert("L")
        elif im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode not in ("L", "LA", "RGB", "RGBA"):
            im = im.convert("RGB")
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def _describe(shape: tuple) -> str:
    c, h, w = shape
    return f"{w}x{h} with {c} channel{'s' if c > 1 else ''}"
