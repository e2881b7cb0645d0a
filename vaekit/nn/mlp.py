"""Fully connected encoder and decoder for data of any shape (flattened).

``batch_norm``, ``dropout`` and ``log_input`` make scVI's networks (Lopez et al. 2018; scvi-tools'
FCLayers): batch norm in both, dropout in the encoder only (scvi-tools' decoder has none), and the
encoder reading log(1 + x) of counts (scvi-tools' ``log_variational``).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from ..registry import NETWORKS
from .common import mlp, with_condition


class MLPEncoder(nn.Module):
    """x (B, *shape) [+ condition (B, K)] -> features (B, hidden[-1])."""

    def __init__(self, data_shape: Sequence[int], hidden: Sequence[int] = (512,), cond_dim: int = 0,
                 activation: str = "relu", batch_norm: bool = False, dropout: float = 0.0, log_input: bool = False):
        super().__init__()
        self.in_dim = math.prod(data_shape)
        self.log_input = bool(log_input)
        self.net = mlp([self.in_dim + cond_dim, *hidden], activation, batch_norm=batch_norm, dropout=dropout)
        self.out_dim = hidden[-1] if hidden else self.in_dim + cond_dim

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x.flatten(1)
        return self.net(with_condition(torch.log1p(x) if self.log_input else x, c))


class MLPDecoder(nn.Module):
    """z (B, D) [+ condition] -> likelihood parameters (B, P * C, *rest) for data (C, *rest)."""

    def __init__(self, latent_dim: int, data_shape: Sequence[int], params_per_value: int = 1,
                 hidden: Sequence[int] = (512,), cond_dim: int = 0, activation: str = "relu",
                 batch_norm: bool = False, dropout: float = 0.0, log_input: bool = False):
        super().__init__()  # dropout and log_input are the encoder's (scvi-tools' decoder has no dropout)
        self.data_shape = tuple(data_shape)
        self.params_per_value = params_per_value
        out = params_per_value * math.prod(data_shape)
        body = (mlp([latent_dim + cond_dim, *reversed(list(hidden))], activation, batch_norm=batch_norm)
                if hidden else nn.Identity())
        last = hidden[0] if hidden else latent_dim + cond_dim
        self.net = nn.Sequential(body, nn.Linear(last, out))

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.net(with_condition(z, c))
        c0, *rest = self.data_shape
        return out.view(z.shape[0], self.params_per_value * c0, *rest)


NETWORKS.register("mlp")((MLPEncoder, MLPDecoder))
