"""Paths vaekit builds from untrusted text stay inside their folder.

A user's own ``--out`` may point anywhere; but a name vaekit derives from data (a default run
directory ``runs/<recipe>-<data>``, a cache file named after a dataset) or a file name read from
inside data must never climb out with ``..``, an absolute path or a symlink.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Union

from .errors import VaekitError

UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
MAX_NAME = 80  # characters: far below any file system's limit, readable in a listing


def safe_name(text: str, default: str = "data") -> str:
    """``text`` as one harmless path component: runs of characters other than ASCII letters, digits
    and ``. _ + -`` become ``_``, leading dots go (no ``..``, no hidden files), at most
    :data:`MAX_NAME` characters; ``default`` when nothing is left.

    >>> safe_name("../../etc/passwd"), safe_name("my data\\n.npy"), safe_name("..")
    ('_.._etc_passwd', 'my_data_.npy', 'data')
    """
    name = UNSAFE.sub("_", str(text)).lstrip(".")[:MAX_NAME]
    return name if name.strip("._-+") else default


def inside(base: Union[str, os.PathLike], relative: Union[str, os.PathLike]) -> Path:
    """``base / relative``, or a VaekitError when that path (symlinks followed) would lie outside
    ``base``: an absolute ``relative``, ``..`` parts, or a symlink leading out."""
    root = Path(base).resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise VaekitError(f"the name {str(relative)!r} would lead outside {base} (to {target}); vaekit only "
                          f"writes and reads such names inside {base}: rename it")
    return Path(base) / relative
