"""``vaekit.load``: rebuild a trained model from its run directory alone."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .. import rundir
from ..config import RunConfig
from ..device import resolve_device
from ..data.types import DataInfo
from ..errors import VaekitError
from .base import Model
from .build import build_model
from .helpers import evaluating, has_lazy


def data_info(cfg) -> DataInfo:
    if not cfg.data_info:
        raise VaekitError("the run config has no data_info; re-create the run with `vaekit train`")
    try:
        return DataInfo.from_dict(cfg.data_info)
    except (KeyError, TypeError, ValueError) as e:
        raise VaekitError(f"the run config's data_info is damaged ({type(e).__name__}: {e}); "
                          "re-create the run with `vaekit train`") from None


def local_run(path) -> Path:
    """The folder of a run: ``path`` itself, or the downloaded (or cached) snapshot of ``hf://ORG/NAME``."""
    from ..hub import download, is_hub_path

    return download(path) if is_hub_path(path) else Path(path)


def load(path, checkpoint: str = "last", device: str = "cpu", encoder: Optional[nn.Module] = None,
         decoder: Optional[nn.Module] = None, config: Optional[RunConfig] = None) -> Model:
    """Rebuild a trained model from its run directory alone.

    ``checkpoint``: "last" (model.safetensors, the last completed epoch), "best" (best.safetensors, the
    best validation value of the objective's monitored metric) or "raw". A run trained with ``ema``
    (``--ema``) saves the average of its weights in the first two, and the weights as trained in
    raw.safetensors; without it, "raw" is the same as "last". Runs
    trained with a custom encoder/decoder need the same modules passed again. The model
    comes back in eval mode; its run's config and data info are on the handle, ``vaekit.open_run(path)``.
    ``path`` may be ``"hf://ORG/NAME"``: a run pushed to the Hugging Face Hub (``vaekit push``).
    ``config``: the run's config when already read.
    """
    path = local_run(path)
    cfg = config if config is not None else rundir.read_config(path)  # checks that path is a run
    rundir.require_checkpoint(checkpoint)
    if cfg.model.network.name == "custom" and (encoder is None or decoder is None):
        raise VaekitError(f"run {path} was trained with a custom encoder/decoder; "
                          "pass the same modules: vaekit.load(path, encoder=..., decoder=...)")
    model = build_model(cfg.model, encoder=encoder, decoder=decoder, name=cfg.model.variant).to(resolve_device(device))
    weights = rundir.checkpoint_file(path, checkpoint) if checkpoint == "raw" else path / rundir.CHECKPOINTS[checkpoint]
    if checkpoint == "best" and not weights.is_file() and (path / rundir.WEIGHTS).is_file():
        raise VaekitError(f"run {path} has no {rundir.BEST}: it has no validation split (--val-fraction 0), "
                          "so there is no best epoch; use checkpoint='last'")
    if has_lazy(model):
        materialize(model)
    rundir.load_weights(weights, model)
    data_info(cfg)  # a damaged data_info is refused here, not at first use
    model.eval()
    return model


def materialize(model: Model) -> None:
    """Run one zero example through a model whose lazy layers have no shape yet."""
    x = torch.zeros(1, *model.data_shape, device=model.device)
    y = torch.zeros(1, 1 + len(model.covariates), dtype=torch.long) if model.conditioned else None
    with evaluating(model):
        model(x, y)
