"""A masked autoregressive flow fitted to the codes by maximum likelihood.

Papamakarios, Pavlakou & Murray 2017, "Masked Autoregressive Flow for Density Estimation"
(NeurIPS). Each layer is an affine autoregressive map whose shift and log-scale come from a
MADE network (Germain, Gregor, Murray & Larochelle 2015, "MADE: Masked Autoencoder for
Distribution Estimation"); the variable order is reversed between layers. The density is exact
and needs one pass per layer; sampling inverts each layer one variable at a time (D passes).
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..distributions.flows import MaskedLinear
from ..registry import SAMPLERS
from .base import Standardized, check_positive, reset, seeded, train_network

ALPHA_LIMIT = 7.0  # |log-scale| per layer is soft-clipped to this (a vaekit choice, for stable inversion)


class MADE(nn.Module):
    """x (B, D) -> (mu, alpha), each (B, D), where output i depends on x_1..x_{i-1} only.

    Degrees (Germain et al. 2015, sec. 4): inputs 1..D, hidden units cycle through 1..D-1, a
    hidden unit sees inputs of degree <= its own (eq. 12) and output i sees hidden units of
    degree < i (eq. 13). The output layer starts at zero, so every layer starts as the identity.
    """

    def __init__(self, dim: int, hidden: int, depth: int):
        super().__init__()
        degree = torch.arange(1, dim + 1)                                       # (D,) inputs
        layers, previous = [], degree
        for _ in range(depth):
            deg_h = torch.arange(hidden) % max(1, dim - 1) + 1                  # (H,)
            layers.append(MaskedLinear(len(previous), hidden, deg_h[:, None] >= previous[None, :]))
            previous = deg_h
        out_mask = degree[:, None] > previous[None, :]                          # (D, H): strictly earlier
        self.hidden = nn.ModuleList(layers)
        self.out = MaskedLinear(len(previous), 2 * dim, torch.cat([out_mask, out_mask]))
        self.zero_output()

    def zero_output(self) -> None:
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = x
        for layer in self.hidden:
            h = F.elu(layer(h))
        mu, alpha = self.out(h).chunk(2, dim=-1)
        return mu, ALPHA_LIMIT * torch.tanh(alpha / ALPHA_LIMIT)


@SAMPLERS.register("maf")
class MAFSampler(Standardized):
    """p(z) by a MAF of ``layers`` MADE layers (``depth`` hidden layers of ``hidden`` units each)
    on the standardized codes, trained with Adam for ``epochs`` passes (``lr``, ``batch``).

    Layer (Papamakarios et al. 2017, eqs. 3-5): x_i = u_i exp(alpha_i) + mu_i with
    (mu_i, alpha_i) = f_i(x_{1:i-1}); so u_i = (x_i - mu_i) exp(-alpha_i) and
    log p(x) = log N(u; 0, I) - sum_i alpha_i. The paper also puts batch normalization between
    layers; vaekit does not.
    """

    count_args, width_args = ("layers", "depth"), ("hidden",)

    def __init__(self, dim: int, layers: int = 5, hidden: int = 100, depth: int = 2, epochs: int = 100,
                 lr: float = 1e-3, batch: int = 128):
        super().__init__(dim)
        check_positive("maf", layers=layers, hidden=hidden, depth=depth, epochs=epochs, lr=lr, batch=batch)
        self.epochs, self.lr, self.batch = int(epochs), float(lr), int(batch)
        self.mades = nn.ModuleList(MADE(dim, int(hidden), int(depth)) for _ in range(int(layers)))
        self.train_loss = math.nan

    def fit(self, codes: torch.Tensor, seed: int = 0) -> "MAFSampler":
        u = self.standardize(self.check_codes(codes))                          # (N, D)
        with seeded(seed):
            reset(self)
            for made in self.mades:
                made.zero_output()
            self.train_loss = train_network(self, lambda x: -self.unit_log_prob(x).mean(), u, self.epochs,
                                            self.lr, self.batch)["loss"]
        return self

    def forward_transform(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x (B, D) -> (u (B, D), log |det du/dx| (B,)), one pass per layer."""
        log_det = x.new_zeros(x.shape[0])
        for i, made in enumerate(self.mades):
            if i > 0:
                x = x.flip(-1)
            mu, alpha = made(x)
            x = (x - mu) * torch.exp(-alpha)
            log_det = log_det - alpha.sum(-1)
        return x, log_det

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, D) -> x (B, D): each layer inverted one variable at a time, in the order of its degrees."""
        x = u
        for i in reversed(range(len(self.mades))):
            made, y = self.mades[i], x
            x = torch.zeros_like(y)
            for d in range(self.dim):
                mu, alpha = made(x)                                            # column d is final now
                x = x.clone()
                x[:, d] = y[:, d] * torch.exp(alpha[:, d]) + mu[:, d]
            if i > 0:
                x = x.flip(-1)
        return x

    def unit_log_prob(self, u: torch.Tensor) -> torch.Tensor:
        v, log_det = self.forward_transform(u)
        return -0.5 * (v.pow(2).sum(-1) + self.dim * math.log(2 * math.pi)) + log_det

    @torch.no_grad()
    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.unit_log_prob(self.to_unit(z)) - self.log_scale()

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.from_unit(self.inverse(torch.randn(int(n), self.dim)))
