"""JointVAE: a continuous and a discrete latent side by side, each with its own capacity.

Dupont 2018, "Learning Disentangled Joint Continuous and Discrete Representations" (NeurIPS).
The encoder's features feed two posteriors in parallel: q(z|x), Gaussian (the configured
``--posterior``), and q(c|x), one Gumbel-softmax (Concrete) vector per discrete variable. The
decoder reads their concatenation [z, c]. Priors: p(z) the configured ``--prior`` (N(0, I)) and
p(c) uniform categorical. Being independent given x, the two parts are separate entries of
``ModelOutput.latents`` and ``elbo_terms`` sums their KLs (Dupont eq. 5-6).

Objective ``joint-capacity`` (Dupont eq. 7):
    loss = recon + gamma |KL(q(z|x) || p(z)) - C_z| + gamma |KL(q(c|x) || p(c)) - C_c|.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, constraints

from ..contract.bounds import elbo_terms
from ..contract.output import Latent, ModelOutput
from ..distributions.gumbel import GroupedConcrete, GumbelSoftmaxPosterior, UniformCategorical
from ..errors import VaekitError
from ..objectives.base import LossOutput
from ..objectives.capacity import Capacity
from ..registry import MODELS, OBJECTIVES
from .base import Model, distribution_mean


class Concatenated(Distribution):
    """Independent parts side by side, z = [z_1, ..., z_n]: batch (B,), event (sum D_i,).

    What ``encode`` returns: ``mean`` (what ``embed`` gives) and ``variance`` are the parts'
    concatenated; ``log_prob`` is the sum of the parts' log densities at their slices.
    """

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, parts: Sequence[Distribution]):
        self.parts = list(parts)
        self.dims = [int(p.event_shape[-1]) for p in self.parts]
        super().__init__(self.parts[0].batch_shape, torch.Size([sum(self.dims)]), validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        return torch.cat([distribution_mean(p) for p in self.parts], dim=-1)

    @property
    def variance(self) -> torch.Tensor:
        return torch.cat([p.variance for p in self.parts], dim=-1)

    def expand(self, batch_shape, _instance=None):
        return Concatenated([p.expand(batch_shape) for p in self.parts])

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        return torch.cat([p.rsample(sample_shape) for p in self.parts], dim=-1)   # (*S, *B, D)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return sum(p.log_prob(v) for p, v in zip(self.parts, value.split(self.dims, dim=-1)))


def _check_categories(categories) -> List[int]:
    """``categories``: one count per discrete variable, e.g. [10]; a bare int is one variable."""
    cats = [categories] if isinstance(categories, int) and not isinstance(categories, bool) else categories
    if not isinstance(cats, (list, tuple)) or not cats or \
            not all(isinstance(k, int) and not isinstance(k, bool) and k >= 2 for k in cats):
        raise VaekitError(f"option categories of the jointvae model must be a list of category counts, each at "
                          f"least 2 (one per discrete variable, e.g. [10]); got {categories!r}")
    return [int(k) for k in cats]


@MODELS.register("jointvae")
class JointVAE(Model):
    """A continuous latent of ``continuous`` dims and one Concrete variable per entry of ``categories``.

    ``model.latent_dim`` = continuous + sum(categories): ``encode``, ``embed``, ``decode`` and
    ``prior_sample`` work on the concatenation [z, c_1, ..., c_n]. ``embed`` is the Gaussian mean
    beside each variable's category probabilities; ``prior_sample`` draws z from p(z) and each c
    as an exact one-hot vector from the uniform categorical (the generative model's p(c); the
    relaxation is only for training). ``latents`` in ``forward``: continuous first, then each
    discrete variable.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, posterior: nn.Module, prior: nn.Module,
                 likelihood: nn.Module, continuous: int, categories: Sequence[int], data_shape: Sequence[int],
                 num_classes: Optional[int] = None, temperature: float = 0.67):
        cats = _check_categories(categories)
        if hasattr(prior, "bind"):
            raise VaekitError(f"the jointvae model's continuous prior cannot be {type(prior).__name__}, which "
                              "needs the model's encoder; use --prior normal")
        super().__init__(int(continuous) + sum(cats), data_shape, num_classes)
        self.continuous, self.categories = int(continuous), cats
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        features = getattr(encoder, "out_dim", None)
        # q(z|x) and q(c_i|x) heads on the same features; p(z) and p(c_i) alongside, same order
        self.posteriors = nn.ModuleList([posterior] + [
            GumbelSoftmaxPosterior(features, k, categories=k, temperature=temperature) for k in self.categories])
        self.priors = nn.ModuleList([prior] + [UniformCategorical(k, categories=k, temperature=temperature)
                                               for k in self.categories])

    @classmethod
    def from_config(cls, cfg, parts, categories: Sequence[int] = (10,), temperature: float = 0.67) -> "JointVAE":
        """``--latent-dim`` is the continuous part's size; ``categories`` one count per discrete variable."""
        cats = _check_categories(categories)
        likelihood = parts.likelihood()
        encoder, decoder = parts.networks(cfg.latent_dim + sum(cats), likelihood.params_per_value)
        posterior = parts.posterior(getattr(encoder, "out_dim", None), cfg.latent_dim)
        return cls(encoder, decoder, posterior, parts.prior(cfg.latent_dim), likelihood, cfg.latent_dim, cats,
                   parts.shape, parts.num_classes, temperature)

    def _posteriors(self, x: torch.Tensor, c) -> List[Distribution]:
        x = self.check_shape(x)
        h = self.encoder(x, self.condition(c, x.shape[0]))                     # (B, F)
        return [head(h) for head in self.posteriors]

    def encode(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> Concatenated:
        """q(z, c | x) = q(z|x) prod_i q(c_i|x): batch (B,), event (latent_dim,)."""
        return Concatenated(self._posteriors(x, c))

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> ModelOutput:
        qs = self._posteriors(x, c)
        zs = [q.rsample() for q in qs]                                          # (B, D_i) each
        latents = [Latent(q, z, p()) for q, z, p in zip(qs, zs, self.priors)]
        return ModelOutput(px=self.decode(torch.cat(zs, dim=-1), c), latents=latents)

    def prior_sample(self, n: int, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        z = self.priors[0]().sample((n,)).to(self.device)                       # (n, continuous)
        ones = [F.one_hot(torch.randint(k, (n,), device=self.device), k).to(z.dtype) for k in self.categories]
        return torch.cat([z, *ones], dim=-1)                                    # (n, latent_dim)


@OBJECTIVES.register("joint-capacity")
class JointCapacity(Capacity):
    """loss = recon + gamma |KL_cont - C_z| + gamma |KL_disc - C_c| (Dupont 2018, eq. 7).

    KL_cont sums the KLs of the continuous latents, KL_disc those of the Gumbel-softmax ones
    (the categorical KL, Jang et al.), each the batch mean. As in ``capacity`` (whose ramp this
    reuses), C_z = w * c_max and C_c = w * c_max_disc with w the trainer's linear warm-up weight,
    0 -> 1 over ``--warmup-epochs`` (both capacities reach their maximum together, as in the
    paper's runs); C_c is clipped at the discrete latent's maximum capacity, sum_i log K_i
    (Dupont sec. 3.2). The reported ``elbo`` is the true bound of ``elbo_terms``.
    """

    def __init__(self, gamma: float = 30.0, c_max: float = 5.0, c_max_disc: float = 5.0):
        super().__init__(gamma, c_max)
        if c_max_disc < 0:
            raise VaekitError(f"the joint-capacity objective needs c_max_disc >= 0 (nats), got {c_max_disc}")
        self.c_max_disc = float(c_max_disc)

    def capacities(self, kl_weight: float, discrete: Sequence[Distribution]) -> Tuple[float, float]:
        """(C_z, C_c) at warm-up weight w; C_c at most sum log K over the ``discrete`` posteriors' groups."""
        limit = sum(math.log(k) for q in discrete for k in q.sizes)
        w = float(kl_weight)
        return w * self.c_max, min(w * self.c_max_disc, limit)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, c)
        t = elbo_terms(out, x)
        disc = [isinstance(layer.q, GroupedConcrete) for layer in out.latents]
        if all(disc) or not any(disc):
            raise VaekitError("the joint-capacity objective needs a model with a continuous and a discrete "
                              "(gumbel) latent, such as --model jointvae")
        kl_cont = sum(kl for kl, d in zip(t.kls, disc) if not d).mean()
        kl_disc = sum(kl for kl, d in zip(t.kls, disc) if d).mean()
        c_z, c_c = self.capacities(kl_weight, [layer.q for layer, d in zip(out.latents, disc) if d])
        loss = t.recon.mean() + self.gamma * ((kl_cont - c_z).abs() + (kl_disc - c_c).abs())
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), "kl_cont": kl_cont,
                 "kl_disc": kl_disc, "capacity": torch.tensor(c_z, device=x.device),
                 "capacity_disc": torch.tensor(c_c, device=x.device)}
        return LossOutput({"main": loss}, terms)
