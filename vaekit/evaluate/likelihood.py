"""Importance-sampled estimate of the marginal log-likelihood log p(x)."""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from ..data.types import TensorData
from ..errors import VaekitError
from ..contract.bounds import MAX_ROWS, importance_sampled_log_likelihood, log_importance_weights
from ..registry import METRICS
from .base import Metric
from .units import CONDITIONAL, bits_method, bits_per_dim, log_jacobian, scored_batches, units


@torch.no_grad()
def log_likelihood(model, x: torch.Tensor, c: Optional[torch.Tensor] = None, k: int = 100,
                   max_rows: int = MAX_ROWS) -> torch.Tensor:
    """log p(x) ~= log (1/k) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x); shape (B,).

    The importance-weighted bound of Burda et al. 2016 (IWAE, eq. 8), which Rezende et al.
    2014 and Kingma & Welling 2014 use to report test log-likelihoods. It is a lower bound in
    expectation, at least the ELBO, and tightens as k grows.
    """
    return importance_sampled_log_likelihood(log_importance_weights(model, x, c, k, max_rows))


def evaluate_log_likelihood(model, data: TensorData, k: int = 100, batch_size: int = 64,
                            max_rows: int = MAX_ROWS, info=None) -> Dict[str, float]:
    """Mean importance-sampled log p(x) over ``data`` per example, with its standard error (the
    standard deviation over examples / sqrt(n); 0 for a single example). Tables are reported in
    their original units (``info``, the data's :class:`DataInfo`, gives their statistics);
    ``nll_bits_per_dim`` where bits are meaningful (see :mod:`.units`)."""
    v = _per_example(model, data, k, batch_size, max_rows) + log_jacobian(info)
    result = {"log_likelihood": float(v.mean()), "log_likelihood_se": standard_error(v), "iw_samples": k,
              "units": units(info)}
    if model.num_classes:
        result["conditional"] = CONDITIONAL
    method, levels = bits_method(model, info)
    if method is not None:
        log_p = float(v.mean()) if method == "exact" else \
            float(_per_example(model, data, k, batch_size, max_rows, levels).mean())
        result["nll_bits_per_dim"] = bits_per_dim(log_p, model, method, levels)
    return result


def standard_error(v: torch.Tensor) -> float:
    """Standard error of the mean of ``v``: std / sqrt(n), and 0 for one value."""
    return float(v.double().std() / math.sqrt(len(v))) if len(v) > 1 else 0.0


def _per_example(model, data: TensorData, k: int, batch_size: int, max_rows: int,
                 dequantize_levels: int = 0) -> torch.Tensor:
    values = [log_likelihood(model, x, c, k, max_rows).cpu()
              for x, c in scored_batches(model, data, batch_size, dequantize_levels)]
    return torch.cat(values).double()


@METRICS.register("nll")
class LogLikelihoodMetric(Metric):
    """Importance-sampled log p(x) with ``k`` samples per example (see :func:`log_likelihood`)."""

    requires = ("likelihood",)
    title = "the importance-sampled log-likelihood"
    paper = "Burda et al. 2016, Importance Weighted Autoencoders, eq. 8"
    meanings = {"log_likelihood": "log p(x), importance-sampled (higher is better); -NLL",
                "log_likelihood_se": "its standard error over examples",
                "iw_samples": "importance samples per example (K)",
                "nll_bits_per_dim": "-log2 P(x) / D from the importance-sampled estimate"}
    shortcuts, shortcut_adds = {"--k": "k"}, True  # `vaekit evaluate --k 100` computes nll with k = 100

    def __init__(self, k: int = 1000):
        if int(k) < 1:
            raise VaekitError(f"--k (importance samples) must be at least 1, got {k}")
        self.k = int(k)

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, float]:
        info = None if ctx is None else ctx.info
        if model.deterministic_posterior:  # every sample is the same z: one is the whole estimate
            result = evaluate_log_likelihood(model, data, k=1, info=info)
            result["log_likelihood_note"] = (f"the {model.name} model's posterior is deterministic, so importance "
                                             "sampling adds nothing: this is its ELBO, a lower bound on log p(x)")
            return result
        return evaluate_log_likelihood(model, data, k=self.k, info=info)
