"""A run directory: create one, recognise one, and load its model back."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .config import RunConfig
from .data.types import DataInfo
from .errors import VaekitError
from .models import VAE, build_model
from .models.helpers import has_lazy
from .train import checkpoint as ckpt
from .train import resolve_device


def is_run(path) -> bool:
    return (Path(path) / ckpt.CONFIG).is_file()


def has_checkpoint(path) -> bool:
    """True once an epoch has been saved; a run dir with only config.json holds nothing to lose."""
    return (Path(path) / ckpt.WEIGHTS).is_file() or (Path(path) / ckpt.STATE).is_file()


def require_run(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VaekitError(f"run directory {path} does not exist; train one with `vaekit train --out {path}`")
    if not path.is_dir() or not is_run(path):
        raise VaekitError(f"{path} is not a vaekit run (no {ckpt.CONFIG}); "
                          "pass the --out directory of `vaekit train`")
    return path


def read_config(path) -> RunConfig:
    path = require_run(path)
    raw = ckpt.read_json(path / ckpt.CONFIG, "run config")
    missing = [key for key in ("model", "train", "data", "data_info") if not isinstance(raw, dict) or key not in raw]
    if missing:
        raise VaekitError(f"{path / ckpt.CONFIG} is not a vaekit run config (it lacks {', '.join(missing)}); "
                          "pass a run directory made by `vaekit train`")
    return RunConfig.from_dict(raw, where=str(path / ckpt.CONFIG))


def data_info(cfg: RunConfig) -> DataInfo:
    if not cfg.data_info:
        raise VaekitError("the run config has no data_info; re-create the run with `vaekit train`")
    try:
        return DataInfo.from_dict(cfg.data_info)
    except (KeyError, TypeError, ValueError) as e:
        raise VaekitError(f"the run config's data_info is damaged ({type(e).__name__}: {e}); "
                          "re-create the run with `vaekit train`") from None


def new_run_dir(base: str) -> Path:
    """``base``, or ``base-2``, ``base-3``... whichever does not exist yet."""
    path, i = Path(base), 2
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def load(path, checkpoint: str = "last", device: str = "cpu", encoder: Optional[nn.Module] = None,
         decoder: Optional[nn.Module] = None) -> VAE:
    """Rebuild a trained model from its run directory alone.

    ``checkpoint``: "last" (model.safetensors, the last completed epoch) or "best"
    (best.safetensors, the lowest validation -ELBO). Runs trained with a custom
    encoder/decoder need the same modules passed again.
    """
    path = Path(path)
    cfg = read_config(path)  # checks that path is a run
    files = {"last": ckpt.WEIGHTS, "best": ckpt.BEST}
    if checkpoint not in files:
        raise VaekitError(f"checkpoint must be 'last' or 'best', got {checkpoint!r}")
    if cfg.model.network == "custom" and (encoder is None or decoder is None):
        raise VaekitError(f"run {path} was trained with a custom encoder/decoder; "
                          "pass the same modules: vaekit.load(path, encoder=..., decoder=...)")
    try:
        model = build_model(cfg.model, encoder=encoder, decoder=decoder).to(resolve_device(device))
    except (KeyError, TypeError, ValueError) as e:
        raise VaekitError(f"{path / ckpt.CONFIG} is damaged: it does not describe a model "
                          f"({type(e).__name__}: {e}); re-create the run with `vaekit train`") from None
    weights = path / files[checkpoint]
    if checkpoint == "best" and not weights.is_file() and (path / ckpt.WEIGHTS).is_file():
        raise VaekitError(f"run {path} has no {ckpt.BEST}: it has no validation split (--val-fraction 0), "
                          "so there is no best epoch; use checkpoint='last'")
    if has_lazy(model):
        _materialize(model)
    ckpt.load_weights(weights, model)
    model.eval()
    model.config, model.run_dir = cfg, path
    model.info = data_info(cfg)
    return model


def _materialize(model: VAE) -> None:
    x = torch.zeros(1, *model.data_shape, device=model.device)
    y = torch.zeros(1, dtype=torch.long) if model.num_classes else None
    with torch.no_grad():
        model(x, y)
