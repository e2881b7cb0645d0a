"""Convolutional encoder and mirrored transposed-conv decoder for images of any size.

The default (32, 64 filters, 3x3, stride 2, dense 16) is the classic Keras
convolutional VAE on MNIST. Spatial sizes are computed from the input shape, and the
decoder picks each transposed conv's ``output_padding`` so it lands exactly on the
encoder's sizes: 28 -> 14 -> 7 -> 14 -> 28, 8 -> 4 -> 2 -> 4 -> 8, 27 -> 14 -> 7 -> 14 -> 27.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import VaekitError
from ..registry import NETWORKS
from .common import activation as make_activation, mlp, with_condition


def _down(size: int) -> int:
    # Conv2d(kernel 3, stride 2, padding 1): floor((n + 2 - 3) / 2) + 1 == ceil(n / 2)
    return (size + 1) // 2


def _sizes(hw: Tuple[int, int], n_layers: int) -> List[Tuple[int, int]]:
    sizes = [tuple(hw)]
    for _ in range(n_layers):
        sizes.append((_down(sizes[-1][0]), _down(sizes[-1][1])))
    return sizes


def _check_image(data_shape: Sequence[int], network: str = "conv") -> Tuple[int, int, int]:
    if len(data_shape) != 3:
        raise VaekitError(
            f"the {network} network needs images of shape (C, H, W), got examples of shape {tuple(data_shape)}; "
            "use --network mlp for tables and vectors"
        )
    return tuple(int(s) for s in data_shape)


# Activations in channels-last (NHWC) order let oneDNN skip its layout reorders, which shortens the
# conv recipe's training step (benchmarks/techniques.py ``channels-last``; the README has the ratio);
# the weights keep their ordinary layout, so checkpoints are unchanged.
CHANNELS_LAST = torch.channels_last


class ConvEncoder(nn.Module):
    """x (B, C, H, W) [+ condition (B, K)] -> features (B, dense)."""

    def __init__(self, data_shape: Sequence[int], widths: Sequence[int] = (32, 64), dense: int = 16,
                 cond_dim: int = 0, activation: str = "relu"):
        super().__init__()
        c, h, w = _check_image(data_shape)
        layers, prev = [], c
        for ch in widths:
            layers += [nn.Conv2d(prev, ch, 3, stride=2, padding=1), make_activation(activation)]
            prev = ch
        self.conv = nn.Sequential(*layers)
        fh, fw = _sizes((h, w), len(widths))[-1]
        flat = prev * fh * fw
        self.dense = mlp([flat + cond_dim, dense], activation) if dense else nn.Identity()
        self.out_dim = dense if dense else flat + cond_dim

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.dense(with_condition(self.conv(x.contiguous(memory_format=CHANNELS_LAST)).flatten(1), c))


class ConvDecoder(nn.Module):
    """z (B, D) [+ condition] -> likelihood parameters (B, P * C, H, W)."""

    def __init__(self, latent_dim: int, data_shape: Sequence[int], params_per_value: int = 1,
                 widths: Sequence[int] = (32, 64), dense: int = 16, cond_dim: int = 0,
                 activation: str = "relu"):
        super().__init__()
        c, h, w = _check_image(data_shape)
        sizes = _sizes((h, w), len(widths))
        self.start = (widths[-1], *sizes[-1])  # (C_last, h_last, w_last)
        # The Keras model maps z straight to the conv volume (no dense-16 layer on the way back).
        self.fc = nn.Sequential(nn.Linear(latent_dim + cond_dim, math.prod(self.start)), make_activation(activation))
        layers, prev = [], widths[-1]
        rev = list(reversed(widths))  # e.g. 64, 32: the Keras decoder's filters
        for i, ch in enumerate(rev):
            (th, tw), (sh, sw) = sizes[-2 - i], sizes[-1 - i]
            # ConvTranspose2d(k3, s2, p1) gives 2n - 1 + output_padding
            pad = (th - (2 * sh - 1), tw - (2 * sw - 1))
            layers += [nn.ConvTranspose2d(prev, ch, 3, stride=2, padding=1, output_padding=pad),
                       make_activation(activation)]
            prev = ch
        layers.append(nn.Conv2d(rev[-1], params_per_value * c, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.fc(with_condition(z, c)).view(z.shape[0], *self.start)
        return self.net(h.contiguous(memory_format=CHANNELS_LAST)).contiguous()


NETWORKS.register("conv")((ConvEncoder, ConvDecoder))
