"""A learned mixture-of-Gaussians prior p(z) = sum_k pi_k N(z; mu_k, diag(sigma_k^2))."""
from __future__ import annotations

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
    Monte Carlo estimate log q(z) - log p(z) at the posterior sample.
    """

    def __init__(self, latent_dim: int, components: int = 10):
        super().__init__()
        if int(components) < 1:
            raise VaekitError(f"the mog prior needs at least 1 component, got components={components}")
        k = int(components)
        self.latent_dim = latent_dim
        self.means = nn.Parameter(torch.randn(k, latent_dim))        # (K, D)
        self.log_vars = nn.Parameter(torch.zeros(k, latent_dim))     # (K, D)
        self.logits = nn.Parameter(torch.zeros(k))                   # (K,)

    def forward(self) -> MixtureSameFamily:
        comp = Independent(Normal(self.means, torch.exp(0.5 * self.log_vars)), 1)  # batch (K,), event (D,)
        return MixtureSameFamily(Categorical(logits=self.logits), comp)           # batch (), event (D,)
