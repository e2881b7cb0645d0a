"""A learned mixture-of-Gaussians prior p(z) = sum_k pi_k N(z; mu_k, diag(sigma_k^2))."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from ..errors import VaekitError
from ..registry import PRIORS


@PRIORS.register("mog")
class MixturePrior(nn.Module):
    """p(z) = sum_k softmax(w)_k N(z; mu_k, diag(exp(log_var_k))), all of w, mu, log_var learned.

    A mixture prior as in Dilokthanakul et al. 2016, "Deep Unsupervised Clustering with Gaussian
    Mixture Variational Autoencoders", and the "mixture of Gaussians" prior that Tomczak & Welling
    2018 ("VAE with a VampPrior", sec. 3) compare against. The K means start spread out, drawn
    from N(0, I) with torch's RNG when the model is built; log-variances start at 0 and mixture
    logits at 0 (equal weights). No closed-form KL exists, so ``kl_term`` falls back to the
    Monte Carlo estimate log q(z) - log p(z) at the posterior sample. Over a latent map
    ``latent_shape`` (C, h, w) each component is a diagonal Gaussian over the whole map.
    """

    def __init__(self, latent_dim: int, components: int = 10, latent_shape: Optional[Sequence[int]] = None):
        super().__init__()
        if int(components) < 1:
            raise VaekitError(f"the mog prior needs at least 1 component, got components={components}")
        k = int(components)
        self.latent_dim = latent_dim
        shape = tuple(latent_shape) if latent_shape else (latent_dim,)
        self.means = nn.Parameter(torch.randn(k, *shape))            # (K, D) or (K, C, h, w)
        self.log_vars = nn.Parameter(torch.zeros(k, *shape))
        self.logits = nn.Parameter(torch.zeros(k))                   # (K,)

    def forward(self) -> MixtureSameFamily:
        comp = Independent(Normal(self.means, torch.exp(0.5 * self.log_vars)), self.means.dim() - 1)  # batch (K,)
        return MixtureSameFamily(Categorical(logits=self.logits), comp)           # batch (), event as one z
