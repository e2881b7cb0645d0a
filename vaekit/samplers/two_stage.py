"""The two-stage VAE: a second, small VAE trained on the codes of the first.

Dai & Wipf 2019, "Diagnosing and Enhancing VAE Models" (ICLR), sec. 4: the first VAE's
aggregate posterior q(z) need not match its prior N(0, I), so a second VAE with latent u (of the
same dimension as z, as in the paper) is trained on the codes with a learned Gaussian decoder
variance gamma (one scalar, the gamma of the paper's Gaussian decoder N(mu, gamma I)); new codes
are u ~ N(0, I), then z ~ N(G(u), gamma I). The paper trains it on samples z ~ q(z|x); vaekit
fits it to the posterior means, like the other samplers. It is trained by a short Adam loop here
(vaekit's Trainer expects a run directory, a dataset and a model structure; a sampler has none).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Independent, Normal, kl_divergence

from ..registry import SAMPLERS
from .base import Standardized, check_positive, reset, seeded, train_network


class SkipMLP(nn.Module):
    """x (B, I) -> ``depth`` ReLU layers of ``hidden`` units -> [x, h] -> linear -> (B, O): the input is
    concatenated to the last hidden layer, as in Dai & Wipf's second-stage networks (their code)."""

    def __init__(self, dim_in: int, hidden: int, depth: int, dim_out: int):
        super().__init__()
        layers, width = [], dim_in
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(dim_in + width, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([x, self.body(x)], -1))


@SAMPLERS.register("two-stage")
class TwoStageVAESampler(Standardized):
    """Second-stage VAE on the standardized codes: encoder and decoder MLPs of ``depth`` ReLU layers
    of ``hidden`` units with the input concatenated before the output layer (Dai & Wipf's code:
    3 x 1024; vaekit's narrower default keeps CPU fits to seconds), trained with Adam for
    ``epochs`` passes (``lr``, ``batch``).

    ``gamma`` is where the learned variance starts. Dai & Wipf's code starts at 1; on short fits
    that start leaves the second VAE at its collapsed optimum (q(u|z) = N(0, I), gamma = 1: one
    Gaussian, every mode lost), so vaekit starts at 0.1 (a vaekit choice; pass gamma=1 for theirs).

    Loss per code, the negative ELBO with the paper's Gaussian decoder of variance gamma I (Dai &
    Wipf 2019, sec. 2; equation number not checked):
    KL(q(u|z) || N(0, I)) - log N(z; G(u), gamma I), u ~ q(u|z) by reparameterization, gamma =
    exp(log_gamma) learned. ``score`` is that ELBO (one u per code), a lower bound on log p(z).
    """

    score_name = "elbo"
    count_args, width_args = ("depth",), ("hidden",)

    def __init__(self, dim: int, hidden: int = 256, depth: int = 3, epochs: int = 100, lr: float = 1e-3,
                 batch: int = 128, gamma: float = 0.1):
        super().__init__(dim)
        check_positive("two-stage", hidden=hidden, depth=depth, epochs=epochs, lr=lr, batch=batch, gamma=gamma)
        self.epochs, self.lr, self.batch, self.gamma0 = int(epochs), float(lr), int(batch), float(gamma)
        self.encoder = SkipMLP(dim, int(hidden), int(depth), 2 * dim)        # z -> (mu_u, log var_u)
        self.decoder = SkipMLP(dim, int(hidden), int(depth), dim)            # u -> G(u)
        self.log_gamma = nn.Parameter(torch.zeros(()))                   # log of the decoder variance
        self.train_loss = math.nan

    def fit(self, codes: torch.Tensor, seed: int = 0) -> "TwoStageVAESampler":
        z = self.standardize(self.check_codes(codes))                    # (N, D)
        with seeded(seed):
            reset(self)
            with torch.no_grad():
                self.log_gamma.fill_(math.log(self.gamma0))
            self.train_loss = train_network(self, lambda x: -self.unit_elbo(x).mean(), z, self.epochs,
                                            self.lr, self.batch)["loss"]
        return self

    def unit_elbo(self, z: torch.Tensor) -> torch.Tensor:
        """E_q[log p(z|u)] - KL(q(u|z) || p(u)) with one reparameterized u, (B,)."""
        mu, log_var = self.encoder(z).chunk(2, dim=-1)                   # (B, D) each
        q = Independent(Normal(mu, (0.5 * log_var).exp()), 1)
        p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
        u = q.rsample()
        px = Independent(Normal(self.decoder(u), (0.5 * self.log_gamma).exp().expand_as(z)), 1)
        return px.log_prob(z) - kl_divergence(q, p)

    @property
    def gamma(self) -> float:
        return float(self.log_gamma.detach().exp())

    @torch.no_grad()
    def score(self, z: torch.Tensor) -> torch.Tensor:
        return self.unit_elbo(self.to_unit(z)) - self.log_scale()

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """u ~ N(0, I), then z ~ N(G(u), gamma I) (p(z|u), as Dai & Wipf's code draws it)."""
        mean = self.decoder(torch.randn(int(n), self.dim))
        return self.from_unit(mean + self.log_gamma.mul(0.5).exp() * torch.randn_like(mean))
