"""A categorical latent relaxed by Gumbel-softmax / Concrete: posterior ``gumbel``, prior ``uniform-categorical``.

Jang, Gu & Poole 2017, "Categorical Reparameterization with Gumbel-Softmax"; Maddison, Mnih &
Teh 2017, "The Concrete Distribution: A Continuous Relaxation of Discrete Random Variables".

The latent z (latent_dim,) is split into consecutive groups of ``categories`` values; each group
is a relaxed one-hot vector on the simplex, independent of the others. When latent_dim is not a
multiple of ``categories`` the last group holds the remainder (latent_dim = 4 with 10 categories
is one group of 4); a remainder of one category (a constant) is refused.

KL and the reported ELBO (a choice, documented here and in the variant):
- ``kl_divergence(q, p)`` is registered as the *analytic KL between the categorical
  probabilities*, sum_groups sum_k q_k log(q_k / p_k), as in Jang et al.'s VAE. So ``kl_term``
  and the ``elbo`` that training and ``evaluate_elbo`` report are Jang et al.'s objective:
  the reconstruction at the relaxed sample plus the discrete KL. That is a surrogate, not an exact
  lower bound on the relaxed model's log p(x).
- ``log_prob`` is the Concrete density (Maddison et al. eq. 1), so importance sampling
  (``log_importance_weights``: log p(x|z) + log p(z) - log q(z) at the relaxed sample, Maddison
  et al.'s estimator) and ``elbo_terms(..., analytic_kl=False)`` are true bounds on the relaxed
  (continuous) model's log-likelihood.
"""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn
from torch.distributions import Distribution, constraints, register_kl
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

from ..errors import VaekitError
from ..registry import POSTERIORS, PRIORS
from .kl import only_with_each_other


def group_sizes(latent_dim: int, categories: int) -> List[int]:
    """Sizes of the consecutive groups latent_dim is split into: ``categories`` each, remainder last."""
    categories = int(categories)
    if categories < 2:
        raise VaekitError(f"a categorical latent needs at least 2 categories per group, got categories={categories}")
    full, rest = divmod(int(latent_dim), categories)
    if rest == 1:
        raise VaekitError(f"latent_dim={latent_dim} with categories={categories} leaves a last group of one "
                          f"category (a constant); use a latent_dim that is a multiple of {categories}, or one that "
                          f"leaves a last group of at least 2")
    return [categories] * full + ([rest] if rest else [])


class GroupedConcrete(Distribution):
    """Independent groups of Concrete (relaxed one-hot) vectors; batch = logits' leading dims, event (D,).

    ``logits`` (..., D) are split by ``sizes``; groups of equal size are handled as one tensor
    (..., G, K). ``mean`` is the categorical probabilities (the relaxed sample's expectation is not
    available in closed form; the probabilities are what ``embed`` shows); ``variance`` is a Monte
    Carlo estimate of the relaxed sample's variance.
    """

    arg_constraints = {}
    support = constraints.real_vector  # each group lies on its simplex; checked by the tests, not here
    has_rsample = True

    def __init__(self, logits: torch.Tensor, temperature: float, sizes: List[int]):
        if sum(sizes) != logits.shape[-1]:
            raise ValueError(f"group sizes {sizes} do not add up to the logits' last dim {logits.shape[-1]}")
        self.logits, self.temperature, self.sizes = logits, float(temperature), list(sizes)
        super().__init__(logits.shape[:-1], logits.shape[-1:], validate_args=False)

    # -- the groups -------------------------------------------------------------------------
    def _chunks(self) -> List[int]:
        """Widths of the runs of equal-size groups: [30, 4] for sizes [10, 10, 10, 4]."""
        out, k0 = [], self.sizes[0]
        full = sum(1 for s in self.sizes if s == k0)
        out.append(full * k0)
        if len(self.sizes) > full:
            out.append(self.sizes[-1])
        return out

    def _split(self, t: torch.Tensor) -> List[torch.Tensor]:
        """t (..., D) -> [(..., G, K), ...] one tensor per run of equal-size groups."""
        parts, k0 = t.split(self._chunks(), dim=-1), self.sizes[0]
        return [parts[0].unflatten(-1, (-1, k0))] + [p.unsqueeze(-2) for p in parts[1:]]

    def _parts(self) -> List[ExpRelaxedCategorical]:
        t = torch.tensor(self.temperature, device=self.logits.device, dtype=self.logits.dtype)
        return [ExpRelaxedCategorical(t, logits=l, validate_args=False) for l in self._split(self.logits)]

    # -- the Distribution interface -----------------------------------------------------------
    @property
    def probs(self) -> torch.Tensor:
        """Categorical probabilities per group, (..., D)."""
        return torch.cat([p.softmax(-1).flatten(-2) for p in self._split(self.logits)], dim=-1)

    @property
    def mean(self) -> torch.Tensor:
        return self.probs

    @property
    def variance(self) -> torch.Tensor:
        """A Monte Carlo estimate from 64 relaxed draws (no closed form), (..., D); as the flow posteriors do."""
        return self.rsample((64,)).var(0)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return GroupedConcrete(self.logits.expand(batch_shape + self.event_shape), self.temperature, self.sizes)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """Gumbel-softmax: y = softmax((logits + g) / temperature) per group, g ~ Gumbel(0, 1)."""
        ys = [p.rsample(sample_shape).exp().flatten(-2) for p in self._parts()]  # (*S, *B, G*K) each
        return torch.cat(ys, dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Concrete density (Maddison et al. 2017, eq. 1), summed over groups; (*S, *B)."""
        tiny = torch.finfo(value.dtype).tiny
        log_y = value.clamp_min(tiny).log()
        total = 0.0
        for part, ly in zip(self._parts(), self._split(log_y)):
            # density of log y (ExpConcrete) minus the log-Jacobian of y = exp(log y): sum_k log y_k
            total = total + (part.log_prob(ly) - ly.sum(-1)).sum(-1)
        return total

    def entropy(self):
        raise NotImplementedError("the Concrete distribution has no closed-form entropy")


@register_kl(GroupedConcrete, GroupedConcrete)
def _kl_categorical(q: GroupedConcrete, p: GroupedConcrete) -> torch.Tensor:
    """KL between the categorical probabilities, sum_groups sum_k q_k (log q_k - log p_k) (Jang et al. 2017).

    Not the KL between the relaxed densities: see the module docstring for what the ELBO then is.
    """
    if q.sizes != p.sizes:
        raise VaekitError(f"the gumbel posterior's groups {q.sizes} and the prior's {p.sizes} differ: "
                          "give both the same categories")
    log_q = torch.cat([l.log_softmax(-1).flatten(-2) for l in q._split(q.logits)], dim=-1)  # (B, D)
    log_p = torch.cat([l.log_softmax(-1).flatten(-2) for l in p._split(p.logits)], dim=-1)  # (D,) or (B, D)
    return (log_q.exp() * (log_q - log_p)).sum(-1)


only_with_each_other(GroupedConcrete, GroupedConcrete, "gumbel", "uniform-categorical", "simplices")


@POSTERIORS.register("gumbel")
class GumbelSoftmaxPosterior(nn.Module):
    """q(z|x): independent groups of Gumbel-softmax (Concrete) relaxed one-hot vectors.

    A linear head gives the logits (B, D); ``rsample`` is the Gumbel-softmax reparameterization
    at a fixed ``temperature`` (no annealing: Jang et al. anneal from 1 to 0.5, this keeps 0.5).
    Logits are clamped to [-20, 20] so a diverging encoder cannot push a sample to exact 0.
    """

    missing_capabilities = {"latent_grid": "its latent groups are relaxed one-hot vectors on simplices, so a grid "
                                           "of latent values leaves them"}

    def __init__(self, in_features: Optional[int], latent_dim: int, categories: int = 10,
                 temperature: float = 0.5):
        super().__init__()
        if not float(temperature) > 0:
            raise VaekitError(f"the gumbel posterior needs temperature > 0, got temperature={temperature}")
        self.latent_dim, self.temperature = latent_dim, float(temperature)
        self.sizes = group_sizes(latent_dim, categories)
        self.head = nn.Linear(in_features, latent_dim) if in_features else nn.LazyLinear(latent_dim)

    def forward(self, h: torch.Tensor) -> GroupedConcrete:
        return GroupedConcrete(self.head(h).clamp(-20.0, 20.0), self.temperature, self.sizes)  # batch (B,)


@PRIORS.register("uniform-categorical")
class UniformCategorical(nn.Module):
    """p(z): each group uniform over its categories, as a Concrete density at ``temperature``.

    Its KL from the gumbel posterior is the discrete one (``_kl_categorical``: log K - H(q) per
    group); its ``log_prob`` is the Concrete density with uniform logits (Maddison et al. 2017), used
    by importance sampling. ``sample`` gives relaxed one-hot vectors.
    """

    def __init__(self, latent_dim: int, categories: int = 10, temperature: float = 0.5):
        super().__init__()
        if not float(temperature) > 0:
            raise VaekitError(f"the uniform-categorical prior needs temperature > 0, got temperature={temperature}")
        self.latent_dim, self.temperature = latent_dim, float(temperature)
        self.sizes = group_sizes(latent_dim, categories)
        self.register_buffer("logits", torch.zeros(latent_dim), persistent=False)

    def forward(self) -> GroupedConcrete:
        return GroupedConcrete(self.logits, self.temperature, self.sizes)  # batch (), event (D,)
