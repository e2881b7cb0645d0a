"""Likelihoods for images beyond the Bernoulli and the Gaussian: densities on [0, 1] or the reals.

- ``continuous-bernoulli``: the normalised Bernoulli on [0, 1] (Loaiza-Ganem & Cunningham 2019).
- ``laplace``: Laplace(mu, b) per value, an L1 reconstruction loss.

The 8-bit probability masses (``categorical256``, ``dlogistic``) live in ``pixel_likelihoods.py``.
Decoders emit (B, P * C, *rest); a likelihood with P > 1 reads it as (B, P, C, *rest).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, Independent, Laplace, constraints

from ..errors import VaekitError
from ..registry import LIKELIHOODS
from .likelihoods import Likelihood, log_scale

SMALL = 1e-2  # |logit / 2| below which the Taylor expansions are used (error < 1e-12)


def _finite(x: torch.Tensor, name: str, what: str) -> None:
    if not bool(torch.isfinite(x).all()):
        raise VaekitError(f"{name} has NaN or infinite values, which the {what} likelihood cannot model")


def cb_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda) of the continuous Bernoulli, lambda = sigmoid(logits).

    C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2 lambda) (Loaiza-Ganem & Cunningham 2019, eq. 7),
    which with u = logits / 2 is 2 u / tanh(u). Near lambda = 1/2 (u -> 0) it is 0/0, so there
    log C = log 2 + u^2 / 3 - 7 u^4 / 90 + O(u^6).
    """
    u = logits / 2
    small = u.abs() < SMALL
    safe = torch.where(small, torch.ones_like(u), u)
    exact = math.log(2.0) + torch.log(safe.abs()) - torch.log(torch.tanh(safe).abs())
    u2 = u * u
    taylor = math.log(2.0) + u2 / 3 - 7 * u2 * u2 / 90
    return torch.where(small, taylor, exact)


class ContinuousBernoulliValues(Distribution):
    """The continuous Bernoulli per value, from logits; batch shape = logits' shape.

    p(x | lambda) = C(lambda) lambda^x (1 - lambda)^(1 - x) on [0, 1]
    (Loaiza-Ganem & Cunningham 2019, The continuous Bernoulli: fixing a pervasive error in
    variational autoencoders).
    """

    arg_constraints = {"logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        super().__init__(logits.shape, validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        # x log lambda + (1 - x) log(1 - lambda) = x * logits - softplus(logits)
        return x * self.logits - F.softplus(self.logits) + cb_log_norm(self.logits)

    @property
    def mean(self) -> torch.Tensor:
        """E[x] = lambda / (2 lambda - 1) + 1 / (2 atanh(1 - 2 lambda)) = 1/2 + (coth u - 1/u) / 2,
        u = logits / 2; near u = 0, coth u - 1/u = u/3 - u^3/45 + O(u^5)."""
        u = self.logits / 2
        small = u.abs() < SMALL
        safe = torch.where(small, torch.ones_like(u), u)
        langevin = torch.where(small, u / 3 - u ** 3 / 45, 1 / torch.tanh(safe) - 1 / safe)
        return 0.5 + langevin / 2

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """Inverse CDF: x = log(1 - v + v e^logits) / logits, v ~ U(0, 1) (paper, appendix)."""
        shape = self._extended_shape(sample_shape)
        v = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device).clamp(1e-7, 1 - 1e-7)
        l = self.logits.expand(shape)
        small = l.abs() < 2 * SMALL
        safe = torch.where(small, torch.ones_like(l), l)
        exact = torch.logaddexp(torch.log1p(-v), torch.log(v) + safe) / safe
        taylor = v + v * (1 - v) * l / 2
        return torch.where(small, taylor, exact).clamp(0.0, 1.0)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)


@LIKELIHOODS.register("continuous-bernoulli")
class ContinuousBernoulliLikelihood(Likelihood):
    """Continuous Bernoulli over each value in [0, 1]: the Bernoulli's cross-entropy plus the
    log normalising constant log C(lambda), so grey values get a true density
    (Loaiza-Ganem & Cunningham 2019). A density: bits per dimension are dequantized."""

    def forward(self, params: torch.Tensor) -> Independent:
        return Independent(ContinuousBernoulliValues(params), len(self.data_shape))

    def check_data(self, x: torch.Tensor, name: str) -> None:
        _finite(x, name, "continuous-bernoulli")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise VaekitError(
                f"{name} has values in [{lo:.3g}, {hi:.3g}], but the continuous-bernoulli likelihood is a density "
                "on [0, 1]; scale the data to [0, 1] or use --likelihood gaussian or laplace")


@LIKELIHOODS.register("laplace")
class LaplaceLikelihood(Likelihood):
    """Laplace(x; mu(z), b) per value: -log p = |x - mu| / b + log(2 b), an L1 reconstruction loss
    (Laplace 1774; the ELBO with any decoder density is Kingma & Welling 2014, sec. 2.3).

    ``scale`` b is one of:

    - ``"learned"`` (the default): one shared log-b learned by gradient descent, like the
      Gaussian's ``sigma="learned"`` (Rybkin et al. 2021).
    - ``"learned-per-value"``: one learned log-b per data value.
    - a number: a fixed b (0.1 suits data in [0, 1]).

    A learned b gets a smooth floor, b = exp(s) + min_scale.
    """

    def __init__(self, data_shape: Sequence[int], scale="learned", min_scale: float = 1e-3):
        super().__init__(data_shape)
        self.min_scale = float(min_scale)
        if not self.min_scale >= 0:
            raise VaekitError(f"min_scale must be at least 0, got {min_scale!r}")
        self.mode = log_scale(self, "log_scale", scale, "the laplace scale")

    def scale(self) -> torch.Tensor:
        if self.mode == "fixed":
            return torch.exp(self.log_scale)
        return torch.exp(self.log_scale) + self.min_scale

    def forward(self, params: torch.Tensor) -> Independent:
        return Independent(Laplace(params, self.scale().expand_as(params), validate_args=False),
                           len(self.data_shape))

    def check_data(self, x: torch.Tensor, name: str) -> None:
        _finite(x, name, "laplace")
