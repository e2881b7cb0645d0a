"""Sliced-Wasserstein auto-encoder: the sliced Wasserstein distance between q(z) and p(z) replaces the KL."""
from __future__ import annotations

from typing import Optional

import torch

from ..contract.bounds import elbo_terms
from ..errors import VaekitError
from ..registry import OBJECTIVES
from .base import LossOutput, Objective, layer_terms
from .mmd import prior_samples


def random_directions(n: int, dim: int, like: torch.Tensor) -> torch.Tensor:
    """``n`` directions uniform on the unit sphere S^(dim-1), (n, dim): normalised Gaussian draws."""
    theta = torch.randn(n, dim, device=like.device, dtype=like.dtype)
    return theta / theta.norm(dim=1, keepdim=True)


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, projections: int = 50, p: float = 2.0,
                       directions: Optional[torch.Tensor] = None) -> torch.Tensor:
    """SW_p^p between the samples x (N, D) and y (N, D), a scalar.

    Kolouri, Pope, Martin & Rohde 2019, "Sliced-Wasserstein Autoencoder", eq. 12 (and their
    reference code): each set is projected on L random unit directions theta_l; in one dimension
    the optimal transport pairs the sorted values, so
    SW_p^p ~= 1/(L N) sum_l sum_n |sort(theta_l . x)_n - sort(theta_l . y)_n|^p.
    ``directions`` (L, D) overrides the L = ``projections`` random ones.
    """
    if x.shape != y.shape or x.dim() != 2:
        raise VaekitError(f"the sliced Wasserstein distance needs two sample sets of the same shape (N, D), "
                          f"got {tuple(x.shape)} and {tuple(y.shape)}")
    theta = random_directions(projections, x.shape[1], x) if directions is None else directions  # (L, D)
    px = torch.sort(x @ theta.T, dim=0).values                   # (N, L)
    py = torch.sort(y @ theta.T, dim=0).values                   # (N, L)
    return (px - py).abs().pow(p).mean()


@OBJECTIVES.register("swae")
class SlicedWasserstein(Objective):
    """loss = recon + lam * SW_p^p(q(z), p(z)), no KL.

    Kolouri et al. 2019, eq. 12: the batch's posterior codes against as many prior samples, per
    stochastic layer (:func:`sliced_wasserstein`), ``projections`` fresh random directions per call.
    The paper's encoder is deterministic; with vaekit's Gaussian posterior the code is the posterior
    sample, as in WAE-MMD (``objectives/mmd.py``); a posterior equal to the prior also gives SW ~ 0,
    a collapsed code training may sit at. Their MNIST code: L = 50 projections, p = 2, lambda = 10. The reported ``elbo`` is the true bound from
    :func:`~vaekit.contract.bounds.elbo_terms`; ``sw`` is the penalty SW_p^p.
    """

    def __init__(self, lam: float = 10.0, projections: int = 50, p: float = 2.0):
        if lam < 0 or projections < 1 or p < 1:
            raise VaekitError(f"the swae objective needs lam >= 0, projections >= 1 and p >= 1, got lam={lam}, "
                              f"projections={projections}, p={p}")
        self.lam, self.projections, self.p = float(lam), int(projections), float(p)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, c)
        t = elbo_terms(out, x)
        penalty = sum(sliced_wasserstein(l.z.reshape(l.z.shape[0], -1),
                                         prior_samples(l.prior, l.z).reshape(l.z.shape[0], -1),
                                         self.projections, self.p) for l in out.latents)
        loss = t.recon.mean() + self.lam * penalty
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), "sw": penalty,
                 **layer_terms(t.kls)}
        return LossOutput({"main": loss}, terms)
