"""The ladder VAE: a hierarchy of Gaussian latents with top-down inference.

Sønderby, Raiko, Maaløe, Sønderby & Winther 2016, "Ladder Variational Autoencoders".
A deterministic bottom-up pass gives each layer i a Gaussian estimate N(mu_hat_i, s_hat_i^2);
going top-down, the generative prior p(z_i | z_{i+1}) = N(mu_p, s_p^2) is combined with it
by precision weighting (eq. 17-19):
    s_q^2 = 1 / (s_hat^-2 + s_p^-2),   mu_q = (mu_hat s_hat^-2 + mu_p s_p^-2) s_q^2.
The top layer's posterior is the bottom-up estimate and its prior N(0, I).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..distributions.posteriors import DiagonalGaussian
from ..errors import VaekitError
from ..nn.common import activation as make_activation, mlp
from ..registry import MODELS
from .base import Model
from ..contract.output import Latent, ModelOutput


def _normal(loc: torch.Tensor, scale: torch.Tensor) -> Independent:
    return Independent(Normal(loc, scale), 1)


def precision_weighted(up: Independent, down: Independent) -> Independent:
    """The product of two diagonal Gaussians, renormalised (Sønderby et al. 2016, eq. 18-19)."""
    p_up, p_down = up.base_dist.scale.pow(-2), down.base_dist.scale.pow(-2)
    var = 1.0 / (p_up + p_down)
    loc = (up.base_dist.loc * p_up + down.base_dist.loc * p_down) * var
    return _normal(loc, var.sqrt())


@MODELS.register("ladder")
class LadderVAE(Model):
    """Layers bottom (1) to top (L). ``dims`` = [d_1, ..., d_L]; ``hidden`` = the width of the
    deterministic MLPs between layers (L - 1 entries). The decoder network reads z_1.

    ``encode`` and ``decode`` work in the top layer's space (``model.latent_dim`` = d_L), so
    latent maps and manifolds show the top layer: ``decode(z_L)`` runs the top-down pass with
    each lower layer at its prior mean, and ``sample`` draws z_L ~ N(0, I) and decodes it so.
    ``reconstruct`` goes through every layer's posterior.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, dims: Sequence[int],
                 hidden: Sequence[int], data_shape, num_classes: Optional[int] = None, activation: str = "relu"):
        if len(dims) < 2 or len(hidden) != len(dims) - 1 or min(dims) < 1 or min(hidden) < 1:
            raise VaekitError(f"a ladder VAE needs at least 2 stochastic layers, one hidden width per layer above "
                              f"the first; got latent sizes {list(dims)} and hidden {list(hidden)}")
        super().__init__(dims[-1], data_shape, num_classes)
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.dims = list(dims)
        self.register_buffer("prior_loc", torch.zeros(dims[-1]), persistent=False)  # N(0, I) on top
        self.up_heads = nn.ModuleList([DiagonalGaussian(getattr(encoder, "out_dim", None), dims[0])])
        self.up_nets = nn.ModuleList()
        width = getattr(encoder, "out_dim", None)
        for d, h in zip(dims[1:], hidden):
            self.up_nets.append(mlp([width, h], activation) if width else
                                nn.Sequential(nn.LazyLinear(h), make_activation(activation)))
            self.up_heads.append(DiagonalGaussian(h, d))
            width = h
        # top-down: z_{i+1} -> p(z_i | z_{i+1}), for i = L-1 .. 1
        self.down_nets = nn.ModuleList([nn.Sequential(mlp([dims[i + 1], hidden[i]], activation),
                                                      DiagonalGaussian(hidden[i], dims[i]))
                                        for i in range(len(dims) - 1)])

    @classmethod
    def from_config(cls, cfg, parts, latent_dims: Sequence[int] = (8,), hidden: Sequence[int] = (64,),
                    activation: str = "relu") -> "LadderVAE":
        """``latent_dims`` and ``hidden``: sizes of the layers above z_1 (whose size is ``--latent-dim``)."""
        for name, sizes in (("latent_dims", latent_dims), ("hidden", hidden)):
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes):
                raise VaekitError(f"option {name} of the ladder model must be a list of positive integers, "
                                  f"got {list(sizes)!r}")
        likelihood = parts.likelihood()
        encoder, decoder = parts.networks(cfg.latent_dim, likelihood.params_per_value)
        return cls(encoder, decoder, likelihood, [cfg.latent_dim, *latent_dims], list(hidden), parts.shape,
                   parts.num_classes, activation)

    def _bottom_up(self, x: torch.Tensor, c) -> List[Independent]:
        """The bottom-up estimates N(mu_hat_i, s_hat_i^2), bottom first."""
        x = self.check_shape(x)
        h = self.encoder(x, self.condition(c, x.shape[0]))
        estimates = [self.up_heads[0](h)]
        for net, head in zip(self.up_nets, self.up_heads[1:]):
            h = net(h)
            estimates.append(head(h))
        return estimates

    def _top_prior(self, n: int) -> Independent:
        loc = self.prior_loc.expand(n, -1)
        return _normal(loc, torch.ones_like(loc))

    def _infer(self, x: torch.Tensor, c, draw) -> List[Latent]:
        """The top-down inference pass; ``draw(q)`` picks each layer's value (a sample or the mean)."""
        up = self._bottom_up(x, c)
        q = up[-1]
        z = draw(q)
        latents = [Latent(q, z, self._top_prior(z.shape[0]))]
        for i in reversed(range(len(self.dims) - 1)):
            prior = self.down_nets[i](z)                                # p(z_i | z_{i+1})
            q = precision_weighted(up[i], prior)
            z = draw(q)
            latents.append(Latent(q, z, prior))
        return latents

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> ModelOutput:
        latents = self._infer(x, c, lambda q: q.rsample())
        return ModelOutput(self._likelihood(latents[-1].z, c), latents)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, c: Optional[torch.Tensor] = None, mean: bool = True) -> torch.Tensor:
        """Decode z_1 reached through every layer's posterior (its mean, or a sample if not ``mean``)."""
        latents = self._infer(x, c, (lambda q: q.mean) if mean else (lambda q: q.sample()))
        return self._likelihood(latents[-1].z, c).mean

    def _likelihood(self, z1: torch.Tensor, c) -> Distribution:
        return self.likelihood(self.decoder(z1, self.condition(c, z1.shape[0])))

    def encode(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        """q(z_L | x), the top layer's posterior."""
        return self._bottom_up(x, c)[-1]

    def decode(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        """p(x | z_1) with z_1 reached from the top value ``z`` through the prior means."""
        z = self.check_latent(z, "top-layer latent points such as model.embed(x)")
        for i in reversed(range(len(self.dims) - 1)):
            z = self.down_nets[i](z).mean
        return self._likelihood(z, c)

    def prior_sample(self, n: int, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._top_prior(n).sample()
