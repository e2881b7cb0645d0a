"""One image file -> float32 (C, H, W) in [0, 1], through a deterministic :class:`ImageTransform`.

The handling of every kind of file, in order:

- the header is read first (:func:`read_header`): a zero-byte file, a file that is no image, an image
  of more than :data:`MAX_PIXELS` pixels or with a side of one pixel (a tracking pixel or a placeholder,
  no picture) is a :class:`BadImage`;
- EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), so a phone photo stands upright and
  its width and height are the ones a viewer shows;
- modes: grey (``1``, ``L``) -> 1 channel, grey+alpha -> 2, RGB, CMYK and YCbCr -> 3 (CMYK through
  Pillow's conversion), RGBA and palette images with transparency -> 4; 16-bit grey PNGs keep their
  16 bits (scaled by 1/65535); 16-bit colour PNGs are read at 8 bits per channel, as Pillow reads them;
- ``channels`` (``--channels 1|3``) converts: to grey by ITU-R 601-2 luma, to RGB by repeating grey;
  an alpha channel is dropped (transparent pixels keep their stored colour);
- ``size`` (``--image-size S`` or ``HxW``) scales the image so it covers H x W, keeping its aspect
  ratio, and crops the centre (``PIL.ImageOps.fit``, bilinear with antialiasing, as torchvision's
  ``Resize``); an image already of that size is left as it is;
- a file whose pixels cannot be decoded (a truncated JPEG) is a :class:`BadImage` when it is decoded.
"""
from __future__ import annotations

import contextlib
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import VaekitError
from ..image_options import MIN_SIDE, parse_channels, parse_image_size

# pixels per image (4096 x 4096), read from its header before it is decoded: a few bytes of a crafted
# PNG or GIF may claim up to PIL's own limit (89 M pixels), several GB once decoded as float32
MAX_PIXELS = 1 << 24
SKIP_HINT = "replace or remove that file, or pass --skip-bad-images to leave bad files out (they are listed)"
GREY, GREY_ALPHA, COLOR_ALPHA = ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"), ("LA", "La"), (
    "RGBA", "RGBa", "PA")
SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")
ORIENTATION = 0x0112  # EXIF tag; values 5..8 turn the image a quarter, swapping width and height


class BadImage(VaekitError):
    """A file that cannot become an example; ``reason`` says why, the message also what to do."""

    def __init__(self, path: Path, reason: str, message: Optional[str] = None):
        self.path, self.reason = Path(path), reason
        super().__init__(message or f"could not read image '{path}' ({reason}); {SKIP_HINT}")


def _too_large(path: Path, details: str) -> BadImage:
    return BadImage(path, f"too large: {details}", f"image '{path}' is too large to load ({details}); shrink it, "
                                                   f"or {SKIP_HINT}")


@dataclass(frozen=True)
class ImageTransform:
    """The deterministic transform every image of a run goes through: ``size`` (H, W) to resize and
    centre-crop to, ``channels`` (1 or 3) to convert to; None leaves that property as the file has it."""

    size: Optional[Tuple[int, int]] = None
    channels: Optional[int] = None

    @property
    def active(self) -> bool:
        return self.size is not None or self.channels is not None

    def to_dict(self) -> dict:
        return {"size": None if self.size is None else list(self.size), "channels": self.channels}

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "ImageTransform":
        d = d or {}
        size = d.get("size")
        return cls(None if size is None else (int(size[0]), int(size[1])), d.get("channels"))

    @classmethod
    def from_options(cls, image_size, channels) -> "ImageTransform":
        return cls(parse_image_size(image_size), parse_channels(channels))

def header_shape(path: Path, transform: ImageTransform) -> Tuple[int, int, int]:
    """The (C, H, W) ``path`` becomes under ``transform``, from its header alone (no pixels decoded)."""
    with _opened(path) as im:
        _check_header(path, im)
        w, h = im.size
        if _orientation(im) in (5, 6, 7, 8):
            w, h = h, w
        c = transform.channels or _mode_channels(im)
    return (c, *(transform.size or (h, w)))


def decode_image(path: Path, transform: ImageTransform) -> np.ndarray:
    """``path`` as float32 (C, H, W) in [0, 1] under ``transform`` (see the module's rules)."""
    from PIL import ImageOps

    with _opened(path) as im:
        _check_header(path, im)
        im.load()
        im = ImageOps.exif_transpose(im)
        im = _converted(im, transform.channels)
        if transform.size is not None and im.size != transform.size[::-1]:
            im = ImageOps.fit(im, transform.size[::-1], _bilinear())
        arr = np.asarray(im, dtype=np.float32)
    arr = arr if im.mode == "F" else arr / np.float32(255)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    if transform.channels == 3 and arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    return np.ascontiguousarray(arr)


def _converted(im, channels: Optional[int]):
    """``im`` in a mode Pillow resizes: L, LA, RGB, RGBA, or F (16-bit grey scaled to [0, 1])."""
    from PIL import Image

    if im.mode in SIXTEEN_BIT:
        values = np.asarray(im, dtype=np.float32)
        if values.max(initial=0) > 65535 or values.min(initial=0) < 0:
            raise ValueError(f"{im.mode} pixel values outside 0..65535")
        return Image.fromarray(values / np.float32(65535), mode="F")
    if im.mode == "1":
        im = im.convert("L")
    elif im.mode in ("P", "PA"):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
    elif im.mode in ("La", "RGBa"):
        im = im.convert(im.mode.upper())
    elif im.mode not in ("L", "LA", "RGB", "RGBA", "F"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX
    if channels == 1 and im.mode not in ("L", "F"):
        im = im.convert("L")
    elif channels == 3 and im.mode in ("LA", "RGBA"):
        im = im.convert("RGB")
    return im


def _mode_channels(im) -> int:
    if im.mode in GREY:
        return 1
    if im.mode in GREY_ALPHA:
        return 2
    if im.mode in COLOR_ALPHA or im.mode == "P" and "transparency" in im.info:
        return 4
    return 3


def _check_header(path: Path, im) -> None:
    if im.width * im.height > MAX_PIXELS:
        raise _too_large(path, f"{im.width}x{im.height} pixels, more than the {MAX_PIXELS} vaekit loads in one image")
    if min(im.width, im.height) < MIN_SIDE:
        raise BadImage(path, f"{im.width}x{im.height} pixels: a side of one pixel holds no picture "
                             "(a tracking pixel or a placeholder)")


def _orientation(im) -> int:
    try:
        return int(im.getexif().get(ORIENTATION, 1))
    except Exception:  # noqa: BLE001 (a broken EXIF block: exif_transpose ignores it as well)
        return 1


def _bilinear():
    from PIL import Image

    return Image.Resampling.BILINEAR


@contextlib.contextmanager
def _opened(path: Path):
    """``Image.open(path)``, its errors while opening and decoding as :class:`BadImage`, its notes silenced."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's notes on odd chunks or metadata are not the user's concern
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        if Path(path).stat().st_size == 0:
            raise BadImage(path, "an empty file (0 bytes)")
        with _pil_errors(path, ""):
            image = Image.open(path)
        with image, _pil_errors(path, "its pixels cannot be decoded: "):
            yield image


@contextlib.contextmanager
def _pil_errors(path: Path, what: str):
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except PermissionError:  # said by data.files.readable
        raise
    except UnidentifiedImageError:
        raise BadImage(path, f"not an image Pillow can read, although its name ends in {Path(path).suffix}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _too_large(path, str(e)) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError) as e:  # PIL's errors for a broken file
        raise BadImage(path, f"{what}{e}") from None
