"""Posterior heads: encoder features -> q(z | x) as a torch Distribution."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.distributions import Independent, Normal

from ..registry import POSTERIORS


@POSTERIORS.register("gaussian")
class DiagonalGaussian(nn.Module):
    """q(z|x) = N(mu(x), diag(sigma(x)^2)) (Kingma & Welling 2014, sec. 3).

    ``rsample`` uses the reparameterization trick z = mu + sigma * eps, eps ~ N(0, I),
    so gradients flow through the sample. The log-variance is clamped to [-30, 20] so a
    diverging encoder gives a large loss rather than inf/NaN.
    """

    def __init__(self, in_features: Optional[int], latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        # LazyLinear infers the feature size of a user's encoder on the first batch.
        self.head = nn.Linear(in_features, 2 * latent_dim) if in_features else nn.LazyLinear(2 * latent_dim)

    def forward(self, h: torch.Tensor) -> Independent:
        mu, logvar = self.head(h).chunk(2, dim=-1)  # (B, D) each
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        return Independent(Normal(mu, std), 1)
