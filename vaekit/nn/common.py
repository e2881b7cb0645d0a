"""Small helpers shared by the encoder and decoder networks."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


def activation(name: str) -> nn.Module:
    from ..errors import VaekitError

    if name not in ACTIVATIONS:
        raise VaekitError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(sizes: Sequence[int], act: str, final_activation: bool = True, batch_norm: bool = False,
        dropout: float = 0.0) -> nn.Sequential:
    """Dense layers ``sizes[0] -> ... -> sizes[-1]`` with an activation after each; with ``batch_norm`` and
    ``dropout`` each hidden layer is Linear -> BatchNorm -> activation -> Dropout, scVI's FCLayers
    (Lopez et al. 2018; momentum 0.01, eps 1e-3 as scvi-tools)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(sizes) - 2:
            layers += [BatchNorm(b)] if batch_norm else []
            layers.append(activation(act))
            layers += [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(*layers)


class BatchNorm(nn.BatchNorm1d):
    """BatchNorm1d (Ioffe & Szegedy 2015) with scvi-tools' momentum and eps; a training batch of one example
    (the last of an epoch) is normalized with the running statistics instead of failing."""

    def __init__(self, features: int):
        super().__init__(features, momentum=0.01, eps=1e-3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.training and h.shape[0] == 1:
            return nn.functional.batch_norm(h, self.running_mean, self.running_var, self.weight, self.bias,
                                            False, 0.0, self.eps)
        return super().forward(h)


def with_condition(h: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
    """Concatenate a condition vector (B, K) to features (B, F) when there is one."""
    return h if c is None else torch.cat([h, c.to(h.dtype)], dim=1)
