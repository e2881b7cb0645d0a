"""The composed VAE: encoder -> posterior -> (prior) -> decoder -> likelihood.

Kingma & Welling 2014, "Auto-Encoding Variational Bayes"; the conditional VAE (the label
y fed to encoder and decoder) is Sohn et al. 2015.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution

from ..errors import VaekitError


@dataclass
class ModelOutput:
    q: Distribution       # q(z|x), batch (B,), event (D,)
    z: torch.Tensor       # (B, D) reparameterized sample
    px: Distribution      # p(x|z), batch (B,), event = data shape
    prior: Distribution   # p(z), event (D,)


class VAE(nn.Module):
    """A VAE from parts. ``encoder(x, c) -> (B, F)``, ``decoder(z, c) -> likelihood params``.

    Any ``nn.Module`` with those call signatures works as encoder or decoder (``c`` is the
    one-hot condition or None); the posterior head infers F on first use if the encoder
    has no ``out_dim`` attribute.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, posterior: nn.Module, prior: nn.Module,
                 likelihood: nn.Module, latent_dim: int, data_shape: Sequence[int],
                 num_classes: Optional[int] = None):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.posterior, self.prior, self.likelihood = posterior, prior, likelihood
        self.latent_dim = latent_dim
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes
        self.config = None    # RunConfig, set by build_model / load
        self.run_dir = None   # set when the model belongs to a run directory

    # -- helpers -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def condition(self, y: Optional[torch.Tensor], n: int) -> Optional[torch.Tensor]:
        """One-hot condition (n, K) for a CVAE, None for a plain VAE."""
        if not self.num_classes:
            return None
        if y is None:
            raise VaekitError(
                f"this is a conditional VAE over {self.num_classes} classes: pass labels (--label) "
                "to choose what to generate"
            )
        y = torch.as_tensor(y, device=self.device).long().reshape(-1)
        if y.numel() == 1 and n > 1:
            y = y.expand(n)
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise VaekitError(f"label {int(y.max()) if int(y.max()) >= 0 else int(y.min())} is out of range; "
                              f"this model knows labels 0..{self.num_classes - 1}")
        return F.one_hot(y, self.num_classes).float()

    def _check_shape(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.data_shape:
            raise VaekitError(f"data has examples of shape {tuple(x.shape[1:])} but the model was built for "
                              f"{self.data_shape}; pass data of the training data's shape")

    # -- the model -----------------------------------------------------------
    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Distribution:
        """q(z|x): a Distribution with batch (B,) and event (latent_dim,)."""
        self._check_shape(x)
        x = x.to(self.device)
        return self.posterior(self.encoder(x, self.condition(y, x.shape[0])))

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> Distribution:
        """p(x|z): a Distribution with batch (B,) and event = data shape."""
        z = z.to(self.device)
        return self.likelihood(self.decoder(z, self.condition(y, z.shape[0])))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> ModelOutput:
        x = x.to(self.device)
        q = self.encode(x, y)
        z = q.rsample()  # z = mu + sigma * eps
        return ModelOutput(q=q, z=z, px=self.decode(z, y), prior=self.prior())

    @torch.no_grad()
    def sample(self, n: int, y: Optional[torch.Tensor] = None, mean: bool = True) -> torch.Tensor:
        """Generate n examples: z ~ p(z), then the mean of p(x|z) (or a draw if not ``mean``)."""
        z = self.prior().sample((n,))
        px = self.decode(z.to(self.device), y)
        return px.mean if mean else px.sample()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: Optional[torch.Tensor] = None, mean: bool = True) -> torch.Tensor:
        """Decode the posterior mean of each x (or a posterior sample if not ``mean``)."""
        q = self.encode(x, y)
        z = q.mean if mean else q.sample()
        return self.decode(z, y).mean

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

