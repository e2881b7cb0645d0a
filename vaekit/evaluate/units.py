"""Log-likelihoods in the data's own units, and bits per dimension where they mean something.

- Tables are standardized for training, x_std = (x - mean) / std, so a density on x_std is
  a density on x times the Jacobian prod(1 / std): log p(x) = log p(x_std) - sum log std.
- Bits per dimension is -log2 P(x) / D for a probability P of discrete data:
  - a likelihood that is itself a probability mass (Bernoulli on binary data) gives it exactly;
  - a density on data quantized to L levels is turned into a probability by uniform
    dequantization (Theis et al. 2016, sec. 3.1): each value owns a bin of width
    1 / (L - 1) around it, and log P(x) >= E_u[log p(x + u)] - D log(L - 1) with
    u ~ U(-1/2, 1/2) / (L - 1); the Theis bound is evaluated at dequantized data;
  - otherwise (Bernoulli on grey values, a density on real-valued data) there is none.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Tuple

import torch

from ..data.batching import iterate_batches
from ..models.helpers import evaluating


def log_jacobian(info) -> float:
    """log |d x_std / d x| summed over an example: -sum log std for a table standardized as ``info`` (the
    data's :class:`DataInfo`) says, else 0."""
    if info is None or info.std is None:
        return 0.0
    return -float(torch.tensor(info.std, dtype=torch.float64).log().sum())


CONDITIONAL = "a conditional model's numbers are of log p(x | y): each example's class label is given"


def units(info) -> str:
    """What the log-density numbers (elbo, recon, kl, log_likelihood) are measured in, for data described
    by ``info``."""
    where = ", in the data's original units (standardization's Jacobian included)" if log_jacobian(info) else ""
    return f"elbo, recon, kl and log_likelihood are nats per example{where}"


def likelihood_name(model) -> str:
    """The registered name of the model's likelihood p(x | z), e.g. "bernoulli"."""
    from ..registry import LIKELIHOODS

    lik = getattr(model, "likelihood", None)
    return next((n for n in LIKELIHOODS.names() if type(lik) is LIKELIHOODS.get(n)), type(lik).__name__)


def bits_method(model, info=None) -> Tuple[Optional[str], Optional[int]]:
    """``("exact" | "dequantized" | None, levels)``: how bits per dimension can be had for this model
    on data described by ``info`` (the evaluated data's :class:`DataInfo`)."""
    levels = None if info is None else info.extra.get("levels")
    lik_levels = getattr(getattr(model, "likelihood", None), "levels", None)
    if lik_levels is not None:
        return ("exact" if levels == lik_levels else None), levels
    return ("dequantized" if levels else None), levels


def no_bits_reason(model, info=None) -> str:
    """Why :func:`bits_method` gives no method."""
    _, levels = bits_method(model, info)
    lik = getattr(getattr(model, "likelihood", None), "levels", None)
    data = f"{levels} levels" if levels else "real values"
    if lik is not None:
        return (f"the likelihood is a probability over {lik} values per dimension but the data has {data}, "
                "so it is not a normalised distribution of the data")
    return "the data is not quantized to known levels (bits per dimension need discrete data)"


def scored_batches(model, data, batch_size: int, dequantize_levels: int = 0) -> Iterator[tuple]:
    """``(x, c)`` batches of ``data`` on the model's device, in eval mode without gradients:
    ``c`` is the label for a conditional model (else None), and x is dequantized to
    ``dequantize_levels`` levels when given (see :func:`dequantize`)."""
    with evaluating(model):
        for x, y in iterate_batches(data, batch_size, device=model.device):
            yield (dequantize(x, dequantize_levels) if dequantize_levels else x), (y if model.conditioned else None)


def dequantize(x: torch.Tensor, levels: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """x + u, u ~ U(-1/2, 1/2) / (levels - 1): a uniform draw from each value's bin."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    return x + (u - 0.5) / (levels - 1)


def bits_per_dim(log_p: float, model, method: str, levels: int) -> float:
    """-log2 P(x) / D from a per-example log p (nats, model units) and the method of :func:`bits_method`."""
    d = math.prod(model.data_shape)
    if method == "dequantized":
        log_p = log_p - d * math.log(levels - 1)
    return -log_p / (d * math.log(2))
