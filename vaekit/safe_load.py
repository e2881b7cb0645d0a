"""``torch.load`` of tensors and numbers only, without torch's own warnings.

Every file vaekit reads with ``torch.load`` is loaded here: ``weights_only=True`` (nothing but tensors,
numbers and containers is unpickled) onto the CPU. torch warns about files it can still try to read
(a raw pickle: "Detected pickle protocol 4 ..."); those warnings are kept from the user, since a file
vaekit cannot use raises a VaekitError that names it and the fix.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Union

import torch


def load_weights_only(path: Union[str, Path]):
    """What ``path`` holds, read by torch's weights-only unpickler onto the CPU; torch's exceptions pass."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(str(path), map_location="cpu", weights_only=True)
