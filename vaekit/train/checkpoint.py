"""Atomic writes and the files of a run directory.

A run is a directory holding config.json, model.safetensors (weights of the last
completed epoch), best.safetensors (best validation loss so far), state.pt (optimizer,
RNG and loop state for --resume) and metrics.jsonl. Every file is written to a temp
file in the same directory and renamed into place, so a crash never leaves a
half-written checkpoint. Nothing is unpickled: weights are safetensors and state.pt is
read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import VaekitError

CONFIG, WEIGHTS, BEST, STATE, METRICS, PLOTS = (
    "config.json", "model.safetensors", "best.safetensors", "state.pt", "metrics.jsonl", "plots")


def atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)``, fsync, then rename onto ``path`` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a run's files are ordinary readable files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: Path, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return atomic_write(path, write)


def save_weights(path: Path, model: torch.nn.Module, metadata: Optional[Dict[str, str]] = None) -> Path:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata or {}))


def load_weights(path: Path, model: torch.nn.Module) -> None:
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path} is missing; the run has no saved weights yet (train it with `vaekit train`)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise VaekitError(f"checkpoint {path} is corrupted or unreadable ({e}); "
                          "retrain, or resume from a copy of the run") from None
    device = next(model.parameters()).device
    try:
        model.load_state_dict({k: v.to(device) for k, v in tensors.items()}, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise VaekitError(f"checkpoint {path} does not match the model in config.json ({first}); "
                          "the run directory may mix files from different runs") from None


def save_state(path: Path, state: dict) -> Path:
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path} is missing, so the run cannot be resumed; start a new run with another --out")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged pickle/zip
        raise VaekitError(f"training state {path} is corrupted or unreadable ({type(e).__name__}); "
                          "start a new run, or resume from a copy of the run") from None


def read_json(path: Path, what: str) -> dict:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise VaekitError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise VaekitError(f"{what} {path} is not valid JSON ({e}); it may be corrupted") from None
