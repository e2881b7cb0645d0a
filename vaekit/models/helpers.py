"""Small things every user of a model needs: eval mode, lazy layers, posterior moments."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch

from ..data.batching import inference_batch_size, iterate_batches
from ..data.types import TensorData


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no gradients for the block; the model's training flag is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def has_lazy(model: torch.nn.Module) -> bool:
    """True while a lazy layer (a user encoder's features) has not seen its first batch."""
    return any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in model.parameters())


def posterior_moments(model, data: TensorData, batch_size: Optional[int] = None, variance: bool = False,
                      flat: bool = False, covariates: Optional[dict] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The latent point of every example (N, *latent_shape) (``model.embed``: the posterior mean), and the
    posterior variance of that shape if asked, on the CPU. A conditional model is given the labels.
    ``flat``: each as (N, latent_dim), a latent map's C * h * w values in one row (for PCA, samplers,
    metrics that read vectors); a vector latent is (N, D) either way. ``covariates`` ({"batch": 0}): every
    example encoded with those covariate codes (:meth:`~vaekit.models.base.Model.with_covariates`).
    ``batch_size``: default :func:`inference_batch_size` up to 1024."""
    if variance:
        model.require("posterior_variance", "--variance (the posterior variance)")
    means, variances = [], []
    with evaluating(model):
        for x, y in iterate_batches(data, batch_size or inference_batch_size(data, most=1024), device=model.device):
            c = model.with_covariates(y if model.conditioned else None, covariates, x.shape[0])
            means.append(model.embed(x, c).float().cpu())
            if variance:
                variances.append(model.encode(x, c).variance.float().cpu())
    means, variances = torch.cat(means), (torch.cat(variances) if variance else None)
    if flat:
        means, variances = means.flatten(1), (variances.flatten(1) if variance else None)
    return means, variances
