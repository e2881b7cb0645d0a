"""KL(q || p) with a closed form where torch registers one, Monte Carlo otherwise."""
from __future__ import annotations

import torch
from torch.distributions import Distribution, Independent, kl_divergence, register_kl

from ..errors import VaekitError


def kl_term(q: Distribution, p: Distribution, z: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || p(z)) per example, (B,).

    Uses ``kl_divergence`` when a closed form is registered (Gaussian q and p: Kingma &
    Welling 2014, appendix B); otherwise the single-sample estimate log q(z) - log p(z)
    at the reparameterized sample ``z`` (what VampPrior and flow posteriors need).
    """
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        return q.log_prob(z) - p.log_prob(z)


def kl_per_dimension(q: Distribution, p: Distribution):
    """Closed-form KL for each latent value, (B, D) or (B, C, h, w) for a latent map, or None when not
    factorized.

    Needed by free bits, which clamps each dimension's KL separately.
    """
    if (isinstance(q, Independent) and isinstance(p, Independent)
            and q.reinterpreted_batch_ndims == p.reinterpreted_batch_ndims):
        try:
            return kl_divergence(q.base_dist, p.base_dist)
        except NotImplementedError:
            return None
    return None


def only_with_each_other(q_cls, p_cls, posterior: str, prior: str, space: str) -> None:
    """Register KLs that refuse to pair a posterior on ``space`` (a sphere, simplices) with any prior but
    its own, and that prior with any other posterior: a one-line VaekitError naming the fix."""
    def other_prior(q: Distribution, p: Distribution):
        raise VaekitError(f"the {posterior} posterior lies on {space}; its KL is defined against the {prior} prior "
                          f"(model.prior.name={prior}), not {type(p).__name__}")

    def other_posterior(q: Distribution, p: Distribution):
        raise VaekitError(f"the {prior} prior is a density on {space}; it needs the {posterior} posterior "
                          f"(model.posterior.name={posterior}), not {type(q).__name__}")

    register_kl(q_cls, Distribution)(other_prior)
    register_kl(Distribution, p_cls)(other_posterior)
