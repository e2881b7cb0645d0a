"""``torch.load`` of tensors and numbers only, without torch's own warnings.

Every file vaekit reads with ``torch.load`` is loaded here: ``weights_only=True`` (nothing but tensors,
numbers and containers is unpickled) onto the CPU. torch warns about files it can still try to read
(a raw pickle: "Detected pickle protocol 4 ..."); those warnings are kept from the user, since a file
vaekit cannot use raises a VaekitError that names it and the fix.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, Union

import torch

from .errors import VaekitError


def load_weights_only(path: Union[str, Path]):
    """What ``path`` holds, read by torch's weights-only unpickler onto the CPU; torch's exceptions pass."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(str(path), map_location="cpu", weights_only=True)


def load_state(path: Path, what: str, expected: str) -> Dict[str, torch.Tensor]:
    """A flat state dict of tensors from a .pth (weights only) or .safetensors file, else a VaekitError naming
    ``what`` (``"Inception weights"``), the file and the ``expected`` one."""
    try:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = load_weights_only(path)
    except Exception as e:  # torch and safetensors raise many types for a file that is not theirs
        raise VaekitError(f"{what} file {path} could not be read as a state dict of tensors "
                          f"({type(e).__name__}; nothing in it was run); pass {expected}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VaekitError(f"{what} file {path} is not a plain state dict of tensors; pass {expected}")
    return state
