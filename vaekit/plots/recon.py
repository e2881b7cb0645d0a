"""Image grids of samples from the model and of reconstructions next to their originals."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..data.types import DataInfo
from ..errors import VaekitError
from .common import PathLike, as_data, check_label, evaluating, require_image_model
from .grid import image_grid, save_image_grid, upscale_factor, write_png

SEED = 0
BAND = 3  # px of grey between the originals and the reconstructions


def plot_samples(model, path: PathLike, n: int = 64, label: Optional[int] = None, seed: int = SEED,
                 info: Optional[DataInfo] = None) -> Path:
    """Decoder means of ``n`` draws z ~ p(z), in a square-ish grid; returns the written path.

    A CVAE draws class ``label``; without a label it draws one row per class
    (n // num_classes samples each). Seeded, without touching the global RNG. ``info``: the run's DataInfo (``vaekit.open_run(path).info``), its kind and class names.
    """
    require_image_model(model, "the samples plot", info)
    if n < 1:
        raise VaekitError(f"the number of samples must be at least 1, got {n}")
    if model.num_classes and label is None:
        per_class = max(1, n // model.num_classes)
        y = torch.arange(model.num_classes).repeat_interleave(per_class)  # row c = class c
        count, nrow = len(y), per_class
    else:
        y, count, nrow = check_label(model, label), n, math.ceil(math.sqrt(n))
    cuda = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), evaluating(model):
        torch.manual_seed(seed)
        images = model.sample(count, y).cpu()
    return save_image_grid(images, path, nrow=nrow)


def reconstruction_pairs(model, data, n: int = 16, seed: int = SEED):
    """(originals, reconstructions) for ``n`` examples chosen with a seed (all, in order, if n >= N)."""
    data = as_data(data)
    if len(data) == 0:
        raise VaekitError("the data has no examples to reconstruct")
    if n < len(data):
        index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
        data = data.subset(index.sort().values)
    if model.num_classes and data.y is None:
        raise VaekitError(f"this is a conditional VAE over {model.num_classes} classes: the data needs labels y")
    y = data.c if model.conditioned else None
    with evaluating(model):
        recon = model.reconstruct(data.x.to(model.device), None if y is None else y.to(model.device))
    return data.x.cpu(), recon.cpu()


def plot_reconstructions(model, data, path: PathLike, n: int = 16, nrow: int = 8,
                         info: Optional[DataInfo] = None) -> Path:
    """Originals in the top row(s), the decoder mean at their posterior mean right below.

    With ``nrow`` images per row, original i sits at (i // nrow, i % nrow) of the top
    block and its reconstruction at the same place in the bottom block; a 3-px grey band
    separates the blocks. Returns the written path. ``info``: the run's DataInfo (``vaekit.open_run(path).info``), its kind and class names.
    """
    require_image_model(model, "the reconstructions plot", info)
    originals, recon = reconstruction_pairs(model, data, n)
    nrow = min(nrow, len(originals))
    scale = upscale_factor(*originals.shape[2:])
    top, bottom = (image_grid(images, nrow, scale=scale) for images in (originals, recon))
    band = np.full((BAND,) + top.shape[1:], 0.5, dtype=top.dtype)
    return write_png(np.concatenate([top, band, bottom]), path)
