"""Which torch device a run uses."""
from __future__ import annotations

import torch

from .errors import VaekitError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VaekitError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise VaekitError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    return torch.device(name)
