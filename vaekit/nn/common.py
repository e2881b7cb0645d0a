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


def mlp(sizes: Sequence[int], act: str, final_activation: bool = True) -> nn.Sequential:
    """Dense layers ``sizes[0] -> ... -> sizes[-1]`` with an activation after each."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(sizes) - 2:
            layers.append(activation(act))
    return nn.Sequential(*layers)


def with_condition(h: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
    """Concatenate a condition vector (B, K) to features (B, F) when there is one."""
    return h if c is None else torch.cat([h, c.to(h.dtype)], dim=1)
