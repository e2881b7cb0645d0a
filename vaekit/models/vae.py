"""The composed VAE: encoder -> posterior -> (prior) -> decoder -> likelihood.

Kingma & Welling 2014, "Auto-Encoding Variational Bayes"; the conditional VAE (the label
fed to encoder and decoder) is Sohn et al. 2015.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn
from torch.distributions import Distribution

from ..registry import MODELS
from .base import Model
from .library import library_scale
from ..contract.output import Latent, ModelOutput


@MODELS.register("vae")
class VAE(Model):
    """A one-latent VAE from parts. ``encoder(x, c) -> (B, F)``, ``decoder(z, c) -> likelihood params``.

    Any ``nn.Module`` with those call signatures works as encoder or decoder (``c`` is the
    one-hot condition or None); the posterior head infers F on first use if the encoder
    has no ``out_dim`` attribute. An encoder whose ``latent_shape`` is (C, h, w) gives a moment
    map (B, 2C, h, w) instead, and the posterior, prior and decoder's z are latent maps of that
    shape (Rombach et al. 2022); ``latent_dim`` is then C * h * w. A prior with a ``bind`` method
    (VampPrior) is given the model, so it can encode its pseudo-inputs.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, posterior: nn.Module, prior: nn.Module,
                 likelihood: nn.Module, latent_dim: int, data_shape: Sequence[int],
                 num_classes: Optional[int] = None, latent_shape: Optional[Sequence[int]] = None):
        super().__init__(latent_dim, data_shape, num_classes, latent_shape)
        self.encoder, self.decoder = encoder, decoder
        self.posterior, self.prior, self.likelihood = posterior, prior, likelihood
        if hasattr(prior, "bind"):
            prior.bind(self)

    @classmethod
    def from_config(cls, cfg, parts, **options) -> "VAE":
        """``options`` (``model.structure.args``) are the constructor's keyword-only parameters, checked
        against it by :func:`~vaekit.models.build.build_model`; their defaults live there, once."""
        return cls(*cls.composed_parts(cfg, parts), **options)

    @staticmethod
    def composed_parts(cfg, parts) -> tuple:
        """The constructor's positional arguments, each part built from the config."""
        likelihood = parts.likelihood()
        encoder, decoder = parts.networks(cfg.latent_dim, likelihood.params_per_value)
        shape = parts.latent_shape(encoder, cfg.latent_dim)
        latent_dim = math.prod(shape)
        posterior = parts.posterior(getattr(encoder, "out_dim", None), latent_dim, shape)
        return (encoder, decoder, posterior, parts.prior(latent_dim, shape), likelihood, latent_dim, parts.shape,
                parts.num_classes, shape)

    def encode(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        """q(z|x): a Distribution with batch (B,) and event ``latent_shape``: (D,) or (C, h, w)."""
        x = self.check_shape(x)
        return self.posterior(self.encoder(x, self.condition(c, x.shape[0])))

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> ModelOutput:
        q = self.encode(x, c)
        z = q.rsample()  # z = mu + sigma * eps: the reparameterization trick
        return self._with_library(ModelOutput(px=self.decode(z, c), latents=[Latent(q, z, self.prior())]), x, c)

    def _with_library(self, out: ModelOutput, x: torch.Tensor, c: Optional[torch.Tensor],
                      n: Optional[int] = None) -> ModelOutput:
        """With ``--library latent`` (models/library.py): log l drawn from q(log l | x, b) (n draws per example,
        sample-major, where n is given) scales the count likelihood, and joins the latents with its prior."""
        part = getattr(self, "library_latent", None)
        if part is None:
            return out
        b = x.shape[0]
        q = part.posterior(self.check_shape(x), self.condition(c, b))
        log_l = q.rsample() if n is None else q.rsample((n,))       # (B, 1) or (n, B, 1)
        out.px.library = library_scale(log_l)
        out.latents.append(Latent(q if n is None else q.expand((n, b)), log_l, part.prior(c, b)))
        return out

    def fit_data(self, batches) -> None:
        """The library-size prior from the training cells (``--library latent``); nothing without it."""
        part = getattr(self, "library_latent", None)
        if part is not None:
            part.fit(batches)

    def forward_many(self, x: torch.Tensor, c: Optional[torch.Tensor], n: int) -> Optional[ModelOutput]:
        """``forward`` with n posterior samples per example, sample-major: the encoder runs once.

        ``px`` has batch (n * B,) and the latent's z is (n, B, *latent_shape) under q expanded to (n, B);
        importance sampling (``contract.bounds``) uses it to skip n - 1 encoder passes. None for
        a subclass with its own ``forward`` or ``encode``, which this shortcut would bypass.
        """
        if type(self).forward is not VAE.forward or type(self).encode is not VAE.encode:
            return None
        q = self.encode(x, c)
        z = q.rsample((n,))                                      # (n, B, *latent_shape), same draws as n repeats
        cn = None if c is None else repeat_condition(torch.as_tensor(c, device=x.device), x.shape[0], n)
        px = self.decode(z.flatten(0, 1), cn)
        out = ModelOutput(px=px, latents=[Latent(q.expand((n, x.shape[0])), z, self.prior())])
        return self._with_library(out, x, c, n)


def repeat_condition(c: torch.Tensor, b: int, n: int) -> torch.Tensor:
    """``c`` of b examples repeated n times, sample-major: labels (b,) or one label, or labels and covariates
    packed (b, 1 + m), also flattened, as importance sampling passes them."""
    c = c.reshape(b if c.numel() > 1 else 1, -1).expand(b, -1).repeat(n, 1)
    return c[:, 0] if c.shape[1] == 1 else c
