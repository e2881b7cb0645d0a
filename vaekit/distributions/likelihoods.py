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

MOMENTUM = 0.99  # of the optimal sigma's running mean of batch MSEs: about the last 100 steps


def default_likelihood(kind: str, args: dict) -> str:
    """What ``likelihood="auto"`` means: bernoulli for images in [0, 1], gaussian for
    standardized tables or when a sigma is given."""
    return "gaussian" if kind == "table" or "sigma" in args else "bernoulli"


def log_scale(module: nn.Module, name: str, value, option: str, also: str = "") -> str:
    """Give ``module`` its log-scale ``name``: a parameter for "learned" (one shared) or
    "learned-per-value" (one per data value), else a fixed buffer from a positive number.
    Returns the mode ("learned", "learned-per-value" or "fixed")."""
    mode = str(value)
    if mode in ("learned", "learned-per-value"):
        shape = () if mode == "learned" else module.data_shape
        setattr(module, name, nn.Parameter(torch.zeros(shape)))
        return mode
    try:
        number = float(value)
    except ValueError:
        raise VaekitError(f"{option} must be a positive number, {also}'learned' or 'learned-per-value', "
                          f"got {value!r}") from None
    if not number > 0:
        raise VaekitError(f"{option} must be positive, got {value!r}")
    module.register_buffer(name, torch.full(module.data_shape, math.log(number)), persistent=False)
    return "fixed"


class Likelihood(nn.Module):
    params_per_value = 1
    levels = None  # a probability mass over this many values per dimension; None: a density
    def __init__(self, data_shape: Sequence[int]):
        super().__init__()
        self.data_shape = tuple(data_shape)

    def check_data(self, x: torch.Tensor, name: str) -> None:
        """Raise a VaekitError if ``x`` cannot be modelled by this likelihood."""


@LIKELIHOODS.register("bernoulli")
class BernoulliLikelihood(Likelihood):
    """Bernoulli over each value in [0, 1]; -log p is binary cross-entropy summed over pixels.

    Grey values are used as soft targets, as in Kingma & Welling's MNIST experiments; on them
    it is not a normalised distribution (Loaiza-Ganem & Cunningham 2019), so its log p is only
    a probability on binary data.
    """

    levels = 2

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

    ``sigma`` is one of:

    - ``"optimal"`` (the default): one sigma shared by every value, set to its maximum-likelihood
      value sigma^2 = mean squared error of the batch while training (the "optimal sigma-VAE"
      of Rybkin et al. 2021, sec. 3.2), and to a running mean of it for evaluation. It follows
      the reconstruction error, so the KL term is never swamped and the posterior does not
      collapse, whatever the data's scale.
    - ``"learned"``: one shared log-sigma learned by gradient descent (Rybkin et al. 2021).
    - ``"learned-per-value"``: one learned log-sigma per data value. Values that never vary in
      training drive theirs towards ``min_sigma``, each adding up to -log(min_sigma) nats.
    - a number: a fixed sigma. The classic "summed squared error" VAE is sigma^2 = 1/2; sigma = 1
      on [0, 1] images collapses the posterior (the KL outweighs any reconstruction gain).

    Every learned or fitted variance gets a smooth floor, sigma^2 = s^2 + min_sigma^2, whose
    gradient never vanishes (a hard clamp would leave a parameter stuck past its bound).
    """

    def __init__(self, data_shape: Sequence[int], sigma="optimal", min_sigma: float = 1e-3):
        super().__init__(data_shape)
        self.mode = str(sigma)
        self.min_sigma = float(min_sigma)
        if not self.min_sigma >= 0:
            raise VaekitError(f"min_sigma must be at least 0, got {min_sigma!r}")
        if self.mode == "optimal":
            self.register_buffer("mse_ema", torch.zeros(()))       # running mean of the batch MSE (biased)
            self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        else:
            self.mode = log_scale(self, "log_sigma", sigma, "--sigma", "'optimal', ")

    def variance(self) -> torch.Tensor:
        """sigma^2 as used for evaluation and sampling (a scalar or one per value)."""
        if self.mode == "optimal":  # sigma = 1 until the first training batch
            debiased = self.mse_ema / (1 - MOMENTUM ** self.steps.clamp(min=1))
            return torch.where(self.steps > 0, debiased, torch.ones_like(debiased)) + self.min_sigma ** 2
        if self.mode == "fixed":
            return torch.exp(2 * self.log_sigma)
        return torch.exp(2 * self.log_sigma) + self.min_sigma ** 2

    def forward(self, params: torch.Tensor) -> Independent:
        if self.mode == "optimal" and self.training:
            return _OptimalSigmaNormal(params, self, len(self.data_shape))
        scale = self.variance().sqrt().expand_as(params)
        return Independent(Normal(params, scale, validate_args=False), len(self.data_shape))

    def observe(self, batch_mse: torch.Tensor) -> None:
        """Fold one training batch's mean squared error into the running mean (momentum
        ``MOMENTUM``, debiased like Adam's moments so early epochs are not pulled towards 0)."""
        with torch.no_grad():
            self.steps += 1
            self.mse_ema.mul_(MOMENTUM).add_((1 - MOMENTUM) * batch_mse.detach())


class _OptimalSigmaNormal(Independent):
    """N(x; mu, sigma^2) with sigma^2 the batch's mean squared error (+ min_sigma^2), computed
    when ``log_prob`` sees the data; gradients flow through sigma as in Rybkin et al. 2021."""

    def __init__(self, mean: torch.Tensor, owner: GaussianLikelihood, event_dims: int):
        self.owner = owner
        scale = owner.variance().sqrt().expand_as(mean)
        super().__init__(Normal(mean, scale, validate_args=False), event_dims, validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.base_dist.loc
        mse = (x - mean).pow(2).mean()
        self.owner.observe(mse)
        scale = (mse + self.owner.min_sigma ** 2).sqrt()
        return Normal(mean, scale, validate_args=False).log_prob(x).flatten(1).sum(1)
