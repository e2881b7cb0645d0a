"""Priors p(z): modules whose ``forward()`` returns a Distribution over z."""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Independent, Normal

from ..registry import PRIORS


@PRIORS.register("normal")
class StandardNormal(nn.Module):
    """p(z) = N(0, I). Kept as buffers so it follows the model to the GPU."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("scale", torch.ones(latent_dim), persistent=False)

    def forward(self) -> Independent:
        return Independent(Normal(self.loc, self.scale), 1)
