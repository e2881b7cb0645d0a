"""Turning request fields into checked arrays and arrays into response fields (numpy and Pillow only).

Every check raises :class:`BadInput`, which the app answers with a 4xx and its one-line message: a
request's codes and images are checked for shape, dtype, finiteness and base64/PNG validity before
a backend sees them.
"""
from __future__ import annotations

import base64
import binascii
import io
import struct
import warnings
import zlib
from typing import List, Optional, Sequence

import numpy as np

MAX_PNG_BYTES = 1 << 20  # one image's encoded size
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_PIXELS = 1 << 20  # Pillow's decompression-bomb limit for one request image (its default is 89 M)


class BadInput(ValueError):
    """A request field that cannot be used; ``status`` is the HTTP status it answers with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def as_array(rows, field: str, shape: Sequence[int], what: str) -> np.ndarray:
    """``rows`` (nested lists of numbers) as float32 (B, *shape); ``what`` names the expected shape in messages."""
    try:
        x = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"{field} must be a list of {what}, each a nested list of numbers of shape "
                       f"{list(shape)} (a ragged or non-numeric list was given)") from None
    if x.ndim == len(shape):  # one example without its batch axis
        x = x[None]
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape) or x.shape[0] == 0:
        raise BadInput(f"{field} must be a non-empty list of {what} of shape {list(shape)}; got an array of shape "
                       f"{list(x.shape)}")
    if not np.isfinite(x).all():
        raise BadInput(f"{field} holds NaN or infinite values; every value must be a finite number")
    if np.abs(x).max() > np.finfo(np.float32).max:
        raise BadInput(f"{field} holds values beyond float32's range (about 3.4e38)")
    return x.astype(np.float32)


def decode_png(text: str, field: str, shape: Sequence[int]) -> np.ndarray:
    """One base64 PNG as a float32 image (C, H, W) in [0, 1] of the model's ``shape`` (C is 1 or 3)."""
    from PIL import Image

    if not isinstance(text, str):
        raise BadInput(f"{field} must be a base64 string of a PNG")
    if text.startswith("data:"):  # a data URL, as a browser's canvas.toDataURL() gives
        text = text.partition(",")[2]
    if len(text) > MAX_PNG_BYTES * 4 // 3 + 4:
        raise BadInput(f"{field} is larger than {MAX_PNG_BYTES >> 10} KiB of PNG", 413)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{field} is not valid base64 (A-Z, a-z, 0-9, +, / and = padding)") from None
    if not raw.startswith(PNG_SIGNATURE):
        raise BadInput(f"{field} is not a PNG (its bytes do not start with the PNG signature)")
    channels, height, width = shape
    old = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PNG_PIXELS
            with Image.open(io.BytesIO(raw)) as im:
                if im.size != (width, height):  # checked before the pixels are decoded
                    raise BadInput(f"{field} is {im.width}x{im.height} pixels; this model takes {width}x{height}")
                im = im.convert("L" if channels == 1 else "RGB")
                pixels = np.asarray(im, dtype=np.float32) / 255.0
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput(f"{field} declares more pixels than {MAX_PNG_PIXELS} (a decompression bomb?)", 413) from None
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001 (Pillow's many errors for a broken file)
        raise BadInput(f"{field} is not a readable PNG: {e}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def decode_pngs(items: List[str], shape: Sequence[int]) -> np.ndarray:
    """A list of base64 PNGs as a float32 batch (B, C, H, W) in [0, 1]."""
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise BadInput(f"this model's data has shape {list(shape)}, not an image of 1 or 3 channels: send arrays "
                       f"as 'x'")
    if not items:
        raise BadInput("images must hold at least one PNG")
    return np.stack([decode_png(text, f"images[{i}]", shape) for i, text in enumerate(items)])


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, and the CRC-32 of type and data (PNG spec, 2nd ed., sec. 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: np.ndarray) -> str:
    """One image (C, H, W) in [0, 1] (clipped) as a base64 PNG: 8-bit greyscale or RGB (IHDR colour type 0
    or 2, sec. 11.2.2), every scanline with filter type 0 (sec. 9.2), zlib level 1 (sec. 10). Written here,
    not by Pillow, whose per-image set-up took longer than the one-code forward pass it encodes."""
    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    channels, height, width = pixels.shape
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # column 0: each scanline's filter type, 0
    rows[:, 1:] = pixels.transpose(1, 2, 0).reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    png = (PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
           + png_chunk(b"IEND", b""))
    return base64.b64encode(png).decode("ascii")


def as_labels(label, batch: int, num_classes: Optional[int]) -> Optional[np.ndarray]:
    """The class labels (B,) int64 of a conditional model's request: one label for all, or one per example."""
    if not num_classes:
        if label is not None:
            raise BadInput("label applies to a conditional model only; this model takes no label")
        return None
    if label is None:
        raise BadInput(f"this is a conditional model over {num_classes} classes: pass label (0..{num_classes - 1})")
    labels = np.atleast_1d(np.asarray(label))
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise BadInput("label must be an integer or a list of integers")
    if len(labels) == 1:
        labels = np.repeat(labels, batch)
    if len(labels) != batch:
        raise BadInput(f"label has {len(labels)} entries for {batch} examples; pass one label or one per example")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise BadInput(f"label must lie in 0..{num_classes - 1}")
    return labels.astype(np.int64)
