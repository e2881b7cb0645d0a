"""Reconstruction error of the decoded posterior mean: squared error, cross-entropy, and PSNR for images."""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F

from ..data.batching import inference_batch_size, iterate_batches
from ..data.types import TensorData
from ..models.helpers import evaluating
from ..registry import METRICS
from .base import Metric


MAX_PSNR = 100.0  # dB: an exact reconstruction (squared error 0) counts as this


def psnr_db(x: torch.Tensor, x_hat: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image (B,), in dB, float64: 10 log10(L^2 / MSE), L the data range
    (Gonzalez & Woods, "Digital Image Processing", the PSNR of a reconstruction); +inf where x_hat == x."""
    mse = (x_hat.double() - x.double()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range ** 2 / mse)      # mse 0 -> +inf


def psnr(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """:func:`psnr_db` of images in [0, 1] (peak 1), at most :data:`MAX_PSNR`, float32."""
    return psnr_db(x, x_hat).clamp(max=MAX_PSNR).float()


def reconstruction_error(model, data: TensorData, batch_size: Optional[int] = None, info=None) -> Dict[str, float]:
    """``mse``: mean squared error per value between x and the decoded posterior mean, in the
    data's original units; ``bce``: binary cross-entropy summed over an example's values, for
    data in [0, 1] (nats per example); ``psnr``: the mean over images of :func:`psnr`, for images in
    [0, 1]. Deterministic: no latent is sampled. ``info``: the data's :class:`DataInfo`, whose
    statistics give the original units of a table."""
    binary_range = bool(data.x.numel()) and float(data.x.min()) >= 0 and float(data.x.max()) <= 1 and \
        (info is None or info.std is None)
    images = binary_range and data.x.dim() == 4
    sq, ce, n, values, db = 0.0, 0.0, 0, 0, 0.0
    with evaluating(model):
        for x, y in iterate_batches(data, batch_size or inference_batch_size(data), device=model.device):
            x_hat = model.reconstruct(x, y if model.conditioned else None)
            if info is not None:
                x_hat, x_orig = info.denormalize(x_hat), info.denormalize(x)
            else:
                x_orig = x
            sq += float((x_hat - x_orig).double().pow(2).sum())
            if binary_range:
                p = x_hat.clamp(1e-6, 1 - 1e-6)
                ce += float(F.binary_cross_entropy(p, x, reduction="sum").double())
            if images:
                db += float(psnr(x, x_hat.clamp(0, 1)).double().sum())
            n += x.shape[0]
            values += x[0].numel() * x.shape[0]
    if n == 0:
        return {"n": 0}
    out = {"mse": sq / values}
    if binary_range:
        out["bce"] = ce / n
    if images:
        out["psnr"] = db / n
    return out


@METRICS.register("recon")
class ReconstructionMetric(Metric):
    """Squared error and cross-entropy of reconstructions (see :func:`reconstruction_error`)."""

    title = "the reconstruction error"
    meanings = {"mse": "squared error per value of the decoded posterior mean, original units",
                "bce": "binary cross-entropy of the decoded posterior mean, nats per example",
                "psnr": "peak signal-to-noise ratio of the decoded posterior mean, dB per image (images in [0, 1]; "
                        "higher is better)"}

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, float]:
        return reconstruction_error(model, data, info=None if ctx is None else ctx.info)

