"""Likelihoods of count data: ``poisson``, ``nb`` and ``zinb``, parameterized as scVI does.

Lopez, Regier, Cole, Jordan & Yosef 2018, "Deep generative modeling for single-cell
transcriptomics" (Nature Methods; scVI). The decoder gives, per example, proportions rho over the
G features (a softmax); the mean count of feature g is mu_g = l * rho_g, with l the example's
library size, its observed total count (scVI's ``use_observed_lib_size``). Since l is a function
of x, p(x | z) = p(x | z, l(x)) is a distribution over x, and ``log_prob`` reads l from x.

- ``poisson``: x_g ~ Poisson(mu_g).
- ``nb``: x_g ~ NB(mu_g, theta_g), mean mu and inverse dispersion theta > 0 (variance
  mu + mu^2 / theta), theta learned per feature (scVI's ``dispersion="gene"``).
- ``zinb``: with probability pi_g (logits from the decoder) x_g is a structural zero, else NB.

A decoded mean with no x to read l from (sampling, decoding a latent point) uses ``library``: the
running mean of the training library sizes, kept as a buffer.

``library="latent"`` (``--library latent``) makes l scVI's learned log-normal latent instead
(:mod:`vaekit.models.library`): the model sets ``LibraryScaled.library`` to its draw of l, used in place of
the observed total.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Poisson, constraints

from ..errors import VaekitError
from ..registry import LIKELIHOODS
from .likelihoods import MOMENTUM, Likelihood

LIBRARY_MODES = ("observed", "latent")  # --library: l is each example's total count, or scVI's latent


def nb_log_prob(x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """log NB(x; mu, theta) = lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)
    + theta log(theta / (theta + mu)) + x log(mu / (theta + mu)) (Lopez et al. 2018, Methods), per value."""
    log_total = torch.log(theta + mu + eps)
    return (torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1)
            + theta * (torch.log(theta + eps) - log_total) + x * (torch.log(mu + eps) - log_total))


def zinb_log_prob(x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, pi_logits: torch.Tensor,
                  eps: float = 1e-8) -> torch.Tensor:
    """log of pi 1[x = 0] + (1 - pi) NB(x; mu, theta), pi = sigmoid(pi_logits), per value, in log space:
    log pi = -softplus(-logits), log(1 - pi) = -softplus(logits)."""
    nb = nb_log_prob(x, mu, theta, eps)
    log_keep = -F.softplus(pi_logits)
    zero = torch.logaddexp(-F.softplus(-pi_logits), log_keep + nb)
    return torch.where(x < 0.5, zero, log_keep + nb)


class LibraryScaled(Distribution):
    """Counts (B, *data_shape), G values each, whose per-value mean is l * rho, l read from x in ``log_prob``
    (or ``library``); rho and the extra parameters are kept flat, (B, G)."""

    arg_constraints = {}
    support = constraints.nonnegative_integer

    def __init__(self, rho: torch.Tensor, module: "CountLikelihood", extra: torch.Tensor = None):
        self.rho, self.module, self.extra = rho, module, extra
        self.library = None  # l (B, 1) of a learned library-size latent; None: the observed total of x
        super().__init__(rho.shape[:1], module.data_shape, validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(self.rho.shape)
        observed = x.sum(-1, keepdim=True)
        if self.module.training:
            self.module.observe(observed)
        library = observed if self.library is None else self.library
        return self.module.value_log_prob(x, library * self.rho, self.extra).sum(-1)

    @property
    def scale(self) -> torch.Tensor:
        """l: the drawn library-size latent where there is one, else the running mean of the training totals."""
        return self.module.library if self.library is None else self.library

    @property
    def mean(self) -> torch.Tensor:
        mean = self.scale * self.rho
        if self.extra is not None and self.module.zero_inflated:
            mean = mean * torch.sigmoid(-self.extra)  # (1 - pi) mu
        return mean.reshape(self.batch_shape + self.event_shape)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            draws = self.module.draw(self.scale * self.rho, self.extra, sample_shape)
        return draws.reshape(torch.Size(sample_shape) + self.batch_shape + self.event_shape)


class CountLikelihood(Likelihood):
    """A likelihood of count data of one example shape (G,) or any shape (flattened to G values)."""

    zero_inflated = False
    name = "count"  # the registered name, for messages

    def __init__(self, data_shape: Sequence[int], library: str = "observed"):
        super().__init__(data_shape)
        if library not in LIBRARY_MODES:
            raise VaekitError(f"--library must be one of {', '.join(LIBRARY_MODES)} (the observed total count, or "
                              f"scVI's learned library-size latent), got {library!r}")
        self.library_mode = library
        self.values = math.prod(self.data_shape)
        self.register_buffer("library", torch.ones(()))  # running mean of the training library sizes
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, params: torch.Tensor) -> LibraryScaled:
        params = params.reshape(params.shape[0], self.params_per_value, self.values)
        extra = params[:, 1] if self.params_per_value > 1 else None
        return LibraryScaled(torch.softmax(params[:, 0], -1), self, extra)

    def observe(self, library: torch.Tensor) -> None:
        """Fold a training batch's mean library size into ``library`` (momentum and debiasing as the
        gaussian's optimal sigma)."""
        with torch.no_grad():
            self.steps += 1
            new = self.library * MOMENTUM + (1 - MOMENTUM) * library.float().mean()
            first = self.steps == 1
            self.library.copy_(torch.where(first, library.float().mean(), new))

    def check_data(self, x: torch.Tensor, name: str) -> None:
        if not x.numel():
            return
        if float(x.min()) < 0 or not torch.equal(x, x.round()):
            bad = x[(x < 0) | (x != x.round())].flatten()[0].item()
            raise VaekitError(f"{name} has the value {bad:g}, but the {self.name} likelihood models counts (whole "
                              "numbers of 0 or more); pass raw counts (an .h5ad's counts layer: --layer counts) "
                              "or use --likelihood gaussian")

    def value_log_prob(self, x, mu, extra):
        raise NotImplementedError

    def draw(self, mu, extra, sample_shape):
        raise NotImplementedError


@LIKELIHOODS.register("poisson")
class PoissonLikelihood(CountLikelihood):
    """x_g ~ Poisson(l rho_g)."""

    name = "poisson"

    def value_log_prob(self, x, mu, extra):
        return Poisson(mu.clamp(min=1e-8), validate_args=False).log_prob(x)

    def draw(self, mu, extra, sample_shape):
        return Poisson(mu.clamp(min=1e-8)).sample(sample_shape)


@LIKELIHOODS.register("nb")
class NBLikelihood(CountLikelihood):
    """x_g ~ NB(l rho_g, theta_g), theta_g = exp(log_theta_g) learned per feature."""

    name = "nb"

    def __init__(self, data_shape: Sequence[int], library: str = "observed"):
        super().__init__(data_shape, library)
        self.log_theta = nn.Parameter(torch.zeros(self.values))

    def value_log_prob(self, x, mu, extra):
        return nb_log_prob(x, mu, self.log_theta.exp())

    def draw(self, mu, extra, sample_shape):
        # NB as a gamma-Poisson mixture: rate ~ Gamma(theta, theta / mu)
        theta = self.log_theta.exp()
        rate = torch.distributions.Gamma(theta, theta / mu.clamp(min=1e-8)).sample(sample_shape)
        return torch.poisson(rate)


@LIKELIHOODS.register("zinb")
class ZINBLikelihood(NBLikelihood):
    """NB with structural zeros: pi_g = sigmoid(logits_g), the logits from the decoder (a second output
    per value, scVI's ``px_dropout``)."""

    name = "zinb"
    params_per_value = 2
    zero_inflated = True

    def value_log_prob(self, x, mu, extra):
        return zinb_log_prob(x, mu, self.log_theta.exp(), extra)

    def draw(self, mu, extra, sample_shape):
        counts = super().draw(mu, extra, sample_shape)
        keep = torch.bernoulli(torch.sigmoid(-extra).expand_as(counts))
        return counts * keep


def is_count_likelihood(name: str) -> bool:
    """True for a registered likelihood of count data (poisson, nb, zinb)."""
    return name in LIKELIHOODS.names() and issubclass(LIKELIHOODS.get(name), CountLikelihood)


def wants_counts(cfg) -> bool:
    """Whether a run's data is loaded as counts: ``data.counts`` when given, else when the likelihood
    is a count likelihood."""
    return bool(cfg.data.counts) if cfg.data.counts is not None else is_count_likelihood(cfg.model.likelihood.name)


def require_count_likelihood(info, likelihood: str, source: str) -> None:
    """Count data (kept raw) only goes to a count likelihood: the others (gaussian, laplace, ...) model
    standardized tables."""
    if info.counts and not is_count_likelihood(likelihood):
        raise VaekitError(f"{source!r} is loaded as count data (raw whole numbers, not standardized), which the "
                          f"{likelihood} likelihood does not model; use --likelihood nb, zinb or poisson, or "
                          "--no-counts to standardize the table")
