"""Probability masses over quantized values: each data value x in [0, 1] is k / (L - 1), k in 0..L-1.

- ``categorical256``: a free L-way categorical per value (van den Oord et al. 2016,
  Pixel Recurrent Neural Networks, sec. 5.3).
- ``dlogistic``: the discretized logistic mixture of PixelCNN++ (Salimans et al. 2017, sec. 2.1),
  with each channel independent given z (the paper's linear coupling of R, G, B is not used).

L (``levels``) is 256 for 8-bit images, the papers' case. When a run's config leaves ``levels``
out it is taken from the training data (``DataInfo.extra["levels"]``: 17 for scikit-learn's
digits), so the same likelihood is an exact pmf on any evenly quantized images. Either way log p
is an exact log probability and bits per dimension are exact. Decoders emit (B, P * C, *rest),
read here as (B, P, C, *rest).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Distribution, Independent, constraints

from ..errors import VaekitError
from ..registry import LIKELIHOODS
from .likelihoods import Likelihood

LEVELS = 256           # 8-bit images, the default
GRID_TOLERANCE = 1e-3  # of a level: float32 images k / 255 are within 1e-5 of the grid
MIN_LOG_SCALE = -7.0   # PixelCNN++'s floor on the logistic log-scales


def to_levels(x: torch.Tensor, levels: int = LEVELS) -> torch.Tensor:
    """x in [0, 1] -> the integer level round((L - 1) x), as a long tensor clamped to 0..L-1."""
    return torch.round(x * (levels - 1)).clamp(0, levels - 1).long()


def check_levels(levels, what: str) -> int:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise VaekitError(f"{what} levels must be an integer of at least 2 (256 for 8-bit images), got {levels!r}")
    return levels


def check_grid(x: torch.Tensor, name: str, what: str, levels: int) -> None:
    """Refuse data that is not k / (L - 1): a probability over L levels cannot model it."""
    if not bool(torch.isfinite(x).all()):
        raise VaekitError(f"{name} has NaN or infinite values, which the {what} likelihood cannot model")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise VaekitError(f"{name} has values in [{lo:.3g}, {hi:.3g}], but the {what} likelihood needs images "
                          f"scaled to [0, 1] (k / {levels - 1}); use --likelihood gaussian or laplace for real values")
    scaled = x * (levels - 1)
    off = float((scaled - torch.round(scaled)).abs().max())
    if off > GRID_TOLERANCE:
        raise VaekitError(
            f"{name} is not on the {what} likelihood's grid: it is a probability over the {levels} values "
            f"k / {levels - 1}, but some values are {off:.3g} levels off that grid; for data quantized to "
            f"another number of levels set model.likelihood.args.levels to it (or leave levels out: it follows "
            f"the levels vaekit detects in the training data); for continuous values use --likelihood "
            "continuous-bernoulli or bernoulli for values in [0, 1], or gaussian")


def split_params(params: torch.Tensor, per_value: int) -> torch.Tensor:
    """(B, P * C, *rest) -> (B, P, C, *rest)."""
    b, pc, *rest = params.shape
    return params.view(b, per_value, pc // per_value, *rest)


class Categorical256(Distribution):
    """An L-way categorical per value, on x = k / (L - 1); batch shape = logits' shape minus the last (L)."""

    arg_constraints = {}
    support = constraints.unit_interval

    def __init__(self, logits: torch.Tensor):  # logits (..., L)
        self.cat = Categorical(logits=logits, validate_args=False)
        self.levels = logits.shape[-1]
        super().__init__(logits.shape[:-1], validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.cat.log_prob(to_levels(x, self.levels))

    @property
    def mean(self) -> torch.Tensor:
        probs = self.cat.probs
        values = torch.arange(self.levels, dtype=probs.dtype, device=probs.device) / (self.levels - 1)
        return (probs * values).sum(-1)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.cat.sample(sample_shape).to(self.cat.logits.dtype) / (self.levels - 1)


@LIKELIHOODS.register("categorical256")
class Categorical256Likelihood(Likelihood):
    """A free L-way softmax per value (L = 256 for 8-bit images): x = k / (L - 1) with
    p(k) = softmax(logits)_k (van den Oord et al. 2016, Pixel Recurrent Neural Networks, sec. 5.3).
    The decoder emits L logits per value, so its last layer is L times the Bernoulli's."""

    def __init__(self, data_shape: Sequence[int], levels: int = LEVELS):
        super().__init__(data_shape)
        self.levels = self.params_per_value = check_levels(levels, "categorical256")

    def forward(self, params: torch.Tensor) -> Independent:
        logits = split_params(params, self.levels).movedim(1, -1)     # (B, C, *rest, L)
        return Independent(Categorical256(logits), len(self.data_shape))

    def check_data(self, x: torch.Tensor, name: str) -> None:
        check_grid(x, name, "categorical256", self.levels)


def _log_sigmoid_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(a) - sigmoid(b)) for a > b, without cancellation:
    sigmoid(a) - sigmoid(b) = (e^a - e^b) / ((1 + e^a)(1 + e^b))."""
    return F.logsigmoid(a) + torch.log(-torch.expm1(b - a)) - F.softplus(b)


class DiscretizedLogisticMixture(Distribution):
    """sum_m pi_m P(bin k | logistic(mu_m, s_m)) per value, on y = 2x - 1 in [-1, 1], L bins.

    Bin k (centre c_k = 2k / (L-1) - 1) is [c_k - 1/(L-1), c_k + 1/(L-1)], except bin 0, which takes
    everything below, and bin L-1, everything above (Salimans et al. 2017, PixelCNN++, eq. 2, L = 256).
    Each bin's probability is a difference of two sigmoids, computed in the log domain so it is
    exact (no PixelCNN++-style pdf fallback) and the L masses sum to 1.
    """

    arg_constraints = {}
    support = constraints.unit_interval

    def __init__(self, logit_probs: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                 levels: int = LEVELS):
        # each (B, K, C, *rest): mixture components on dim 1
        self.logit_probs, self.means, self.levels = logit_probs, means, levels
        self.log_scales = log_scales.clamp(min=MIN_LOG_SCALE)
        super().__init__(means.shape[:1] + means.shape[2:], validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        top = self.levels - 1
        k = to_levels(x, self.levels).unsqueeze(1)                       # (B, 1, C, *rest)
        y = 2 * k.to(self.means.dtype) / top - 1
        inv_s = torch.exp(-self.log_scales)
        plus = inv_s * (y - self.means + 1 / top)                        # upper bin edge, standardized
        minus = inv_s * (y - self.means - 1 / top)                       # lower bin edge
        middle = _log_sigmoid_difference(plus, minus)
        log_p = torch.where(k == 0, F.logsigmoid(plus), torch.where(k == top, F.logsigmoid(-minus), middle))
        return torch.logsumexp(log_p + F.log_softmax(self.logit_probs, dim=1), dim=1)

    @property
    def mean(self) -> torch.Tensor:
        """E[x] = E[k] / (L-1) with E[k] = sum_{j=1..L-1} P(k >= j), P(k >= j) = sum_m pi_m sigmoid(-(e_j - mu_m) / s_m),
        e_j = (2j - 1) / (L-1) - 1 the lower edge of bin j: exact, in chunks of edges."""
        top = self.levels - 1
        weights = F.softmax(self.logit_probs, dim=1)
        inv_s = torch.exp(-self.log_scales)
        total = torch.zeros_like(self.means)
        edges = (2 * torch.arange(1, self.levels, dtype=self.means.dtype, device=self.means.device) - 1) / top - 1
        for chunk in edges.split(32):
            e = chunk.view(-1, *([1] * self.means.dim()))               # (E, 1, 1, ...)
            total = total + torch.sigmoid(-(e - self.means) * inv_s).sum(0)
        return (weights * total).sum(1) / top

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """Pick a component, draw a logistic, clip to [-1, 1] and round to the nearest bin."""
        with torch.no_grad():
            shape = torch.Size(sample_shape)
            logits = self.logit_probs.movedim(1, -1)                     # (B, C, *rest, K)
            m = Categorical(logits=logits, validate_args=False).sample(shape).unsqueeze(-1)
            pick = lambda t: t.movedim(1, -1).expand(*shape, *logits.shape).gather(-1, m).squeeze(-1)
            mu, log_s = pick(self.means), pick(self.log_scales)
            u = torch.rand_like(mu).clamp(1e-5, 1 - 1e-5)
            y = (mu + torch.exp(log_s) * (torch.log(u) - torch.log1p(-u))).clamp(-1, 1)
            return torch.round((y + 1) * (self.levels - 1) / 2) / (self.levels - 1)


@LIKELIHOODS.register("dlogistic")
class DiscretizedLogisticLikelihood(Likelihood):
    """The discretized logistic mixture of PixelCNN++ over 8-bit values (Salimans et al. 2017,
    PixelCNN++: Improving the PixelCNN with Discretized Logistic Mixture Likelihood and Other
    Modifications, sec. 2.1), ``components`` logistics per value (5 in the paper's ablations, 10
    in its CIFAR model), over ``levels`` bins (256 in the paper). Channels are independent given z:
    the paper's linear dependence of G on R and B on R, G is not modelled. 3 * components
    parameters per value."""

    def __init__(self, data_shape: Sequence[int], components: int = 5, levels: int = LEVELS):
        super().__init__(data_shape)
        self.levels = check_levels(levels, "dlogistic")
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise VaekitError(f"dlogistic components must be a positive integer, got {components!r}")
        self.components = components
        self.params_per_value = 3 * components

    def forward(self, params: torch.Tensor) -> Independent:
        p = split_params(params, self.params_per_value)                  # (B, 3K, C, *rest)
        logit_probs, means, log_scales = p.split(self.components, dim=1)
        return Independent(DiscretizedLogisticMixture(logit_probs, means, log_scales, self.levels),
                           len(self.data_shape))

    def check_data(self, x: torch.Tensor, name: str) -> None:
        check_grid(x, name, "dlogistic", self.levels)
