"""Posterior heads: encoder features -> q(z | x) as a torch Distribution."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal

from ..registry import POSTERIORS


def gaussian_from_moments(mu: torch.Tensor, logvar: torch.Tensor, event_dims: int) -> Independent:
    """N(mu, diag(exp(logvar))) over the last ``event_dims`` dimensions; the log-variance is clamped to
    [-30, 20] so a diverging encoder gives a large loss rather than inf/NaN."""
    return Independent(Normal(mu, torch.exp(0.5 * logvar.clamp(-30.0, 20.0))), event_dims)


@POSTERIORS.register("gaussian")
class DiagonalGaussian(nn.Module):
    """q(z|x) = N(mu(x), diag(sigma(x)^2)) (Kingma & Welling 2014, sec. 3).

    ``rsample`` uses the reparameterization trick z = mu + sigma * eps, eps ~ N(0, I),
    so gradients flow through the sample. The log-variance is clamped to [-30, 20] so a
    diverging encoder gives a large loss rather than inf/NaN.

    A vector latent (B, D): a linear head maps the encoder's features to mu and log sigma^2.
    A spatial latent ``latent_shape`` (C, h, w): the encoder itself gives the moment map
    (B, 2C, h, w), the first C channels mu and the next C log sigma^2 (as latent diffusion's
    DiagonalGaussianDistribution, Rombach et al. 2022); the event is then (C, h, w).
    """

    def __init__(self, in_features: Optional[int], latent_dim: int, latent_shape: Optional[Sequence[int]] = None):
        super().__init__()
        self.latent_dim = latent_dim
        self.latent_shape = tuple(latent_shape) if latent_shape else (latent_dim,)
        if len(self.latent_shape) > 1:
            self.head = nn.Identity()          # the moment map comes from the encoder
        else:  # LazyLinear infers the feature size of a user's encoder on the first batch.
            self.head = nn.Linear(in_features, 2 * latent_dim) if in_features else nn.LazyLinear(2 * latent_dim)

    def forward(self, h: torch.Tensor) -> Independent:
        event_dims = len(self.latent_shape)
        moments = self.head(h)                     # (B, 2D) or (B, 2C, h, w)
        if event_dims > 1 and tuple(moments.shape[1:]) != (2 * self.latent_shape[0], *self.latent_shape[1:]):
            raise ValueError(f"a spatial encoder of latent_shape {self.latent_shape} must give a moment map of "
                             f"shape (B, {2 * self.latent_shape[0]}, {self.latent_shape[1]}, {self.latent_shape[2]})"
                             f", got {tuple(moments.shape)}")
        mu, logvar = moments.chunk(2, dim=-event_dims)
        return gaussian_from_moments(mu, logvar, event_dims)
