"""What the image options take, read without torch (the option table and --help import this):
``--image-size S|HxW``, ``--channels 1|3`` and ``--augment flip,crop``."""
from __future__ import annotations

import re
from typing import Optional, Tuple

from .errors import VaekitError

AUGMENTATIONS = ("flip", "crop")  # in the order they are applied
MIN_SIDE = 2  # pixels: the smallest --image-size side


def parse_augment(value, option: str = "--augment") -> Optional[list]:
    """``"flip,crop"`` / ``["flip", "crop"]`` -> ["flip", "crop"] (AUGMENTATIONS order); "" or "none" -> None."""
    if value is None:
        return None
    items = value.replace(" ", "").split(",") if isinstance(value, str) else list(value)
    items = [str(i).lower() for i in items if i not in ("", None)]
    unknown = [i for i in items if i not in AUGMENTATIONS]
    if unknown or not isinstance(value, (str, list, tuple)):
        if items == ["none"]:
            return None
        raise VaekitError(f"{option} takes a comma-separated list of {', '.join(AUGMENTATIONS)} (e.g. flip,crop); "
                          f"got {value!r}")
    return [k for k in AUGMENTATIONS if k in items] or None


def parse_image_size(value, option: str = "--image-size") -> Optional[Tuple[int, int]]:
    """``64`` / ``"64"`` -> (64, 64); ``"48x64"`` / ``[48, 64]`` -> (48, 64) as (H, W); None stays None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        parts = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        parts = [value, value]
    else:
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(value))
        parts = [] if match is None else [match.group(1), match.group(2) or match.group(1)]
    try:
        size = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or min(size) < MIN_SIDE:
        raise VaekitError(f"{option} takes a size S (square) or HxW, like 64 or 48x64, each at least {MIN_SIDE}; "
                          f"got {value!r}")
    return size


def parse_channels(value, option: str = "--channels") -> Optional[int]:
    if value is None:
        return None
    if str(value).strip() not in ("1", "3"):
        raise VaekitError(f"{option} takes 1 (grey) or 3 (RGB); got {value!r}")
    return int(value)
