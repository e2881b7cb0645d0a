"""Importance-sampled estimate of the marginal log-likelihood log p(x)."""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from ..data.batching import iterate_batches
from ..data.types import TensorData
from ..errors import VaekitError
from ..contract.bounds import MAX_ROWS, importance_sampled_log_likelihood, log_importance_weights
from ..models.helpers import evaluating
from ..registry import METRICS
from .base import Metric


@torch.no_grad()
def log_likelihood(model, x: torch.Tensor, c: Optional[torch.Tensor] = None, k: int = 100,
                   max_rows: int = MAX_ROWS) -> torch.Tensor:
    """log p(x) ~= log (1/k) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x); shape (B,).

    The importance-weighted bound of Burda et al. 2016 (IWAE, eq. 8), which Rezende et al.
    2014 and Kingma & Welling 2014 use to report test log-likelihoods. It is a lower bound in
    expectation, at least the ELBO, and tightens as k grows.
    """
    return importance_sampled_log_likelihood(log_importance_weights(model, x, c, k, max_rows))


def evaluate_log_likelihood(model, data: TensorData, k: int = 100, batch_size: int = 64) -> Dict[str, float]:
    """Mean importance-sampled log p(x) over ``data`` in nats per example, with its standard error
    (0 for a single example)."""
    values = []
    with evaluating(model):
        for x, y in iterate_batches(data, batch_size, device=model.device):
            values.append(log_likelihood(model, x, y if model.num_classes else None, k).cpu())
    v = torch.cat(values).double()
    se = float(v.std() / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return {"log_likelihood": float(v.mean()), "log_likelihood_se": se, "iw_samples": k}


@METRICS.register("nll")
class LogLikelihoodMetric(Metric):
    """Importance-sampled log p(x) with ``k`` samples per example (see :func:`log_likelihood`)."""

    requires = ("likelihood",)
    title = "the importance-sampled log-likelihood"

    def __init__(self, k: int = 1000):
        if int(k) < 1:
            raise VaekitError(f"--iw-samples must be at least 1, got {k}")
        self.k = int(k)

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, float]:
        return evaluate_log_likelihood(model, data, k=self.k)
