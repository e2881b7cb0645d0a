"""Likelihoods p(x | z): decoder output -> a Distribution over one example.

Each likelihood says how many parameters it needs per data value
(``params_per_value``); the decoder emits (B, P * C, *rest) and the likelihood splits it.
The event shape is the whole example, so ``log_prob`` returns (B,) in nats.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

from ..errors import VaekitError
from ..registry import LIKELIHOODS


def default_likelihood(kind: str, args: dict) -> str:
    """What ``likelihood="auto"`` means: bernoulli for images in [0, 1], gaussian for
    standardized tables or when a sigma is given."""
    return "gaussian" if kind == "table" or "sigma" in args else "bernoulli"


class Likelihood(nn.Module):
    params_per_value = 1

    def __init__(self, data_shape: Sequence[int]):
        super().__init__()
        self.data_shape = tuple(data_shape)

    def check_data(self, x: torch.Tensor, name: str) -> None:
        """Raise a VaekitError if ``x`` cannot be modelled by this likelihood."""


@LIKELIHOODS.register("bernoulli")
class BernoulliLikelihood(Likelihood):
    """Bernoulli over each value in [0, 1]; -log p is binary cross-entropy summed over pixels.

    Grey values are used as soft targets, as in Kingma & Welling's MNIST experiments.
    """

    def forward(self, params: torch.Tensor) -> Independent:
        return Independent(Bernoulli(logits=params, validate_args=False), len(self.data_shape))

    def check_data(self, x: torch.Tensor, name: str) -> None:
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise VaekitError(
                f"{name} has values in [{lo:.3g}, {hi:.3g}], but the bernoulli likelihood needs values in [0, 1]; "
                "scale the data to [0, 1] or use --likelihood gaussian"
            )


@LIKELIHOODS.register("gaussian")
class GaussianLikelihood(Likelihood):
    """N(x; mu(z), sigma^2) per value; with fixed sigma -log p is squared error / (2 sigma^2) + const.

    ``sigma="learned"`` learns one log-sigma per data value (shared across examples),
    the "learned variance" decoder of e.g. Rybkin et al. 2021 (sigma-VAE), clamped to
    [1e-3, 1e3]. A number fixes sigma.
    """

    def __init__(self, data_shape: Sequence[int], sigma="1.0"):
        super().__init__(data_shape)
        self.learned = str(sigma) == "learned"
        if self.learned:
            self.log_sigma = nn.Parameter(torch.zeros(self.data_shape))
        else:
            try:
                value = float(sigma)
            except ValueError:
                raise VaekitError(f"--sigma must be a positive number or 'learned', got {sigma!r}") from None
            if not value > 0:
                raise VaekitError(f"--sigma must be positive, got {sigma!r}")
            self.register_buffer("log_sigma", torch.full(self.data_shape, math.log(value)), persistent=False)

    def forward(self, params: torch.Tensor) -> Independent:
        scale = self.log_sigma.clamp(math.log(1e-3), math.log(1e3)).exp().expand_as(params)
        return Independent(Normal(params, scale, validate_args=False), len(self.data_shape))
