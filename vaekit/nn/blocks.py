"""The building blocks of the ResNet networks (vaekit/nn/resnet.py).

The residual block is the one of the DDPM U-Net (Ho et al. 2020, "Denoising Diffusion Probabilistic
Models") and of the latent-diffusion autoencoder (Rombach et al. 2022, "High-Resolution Image Synthesis
with Latent Diffusion Models"): GroupNorm, SiLU, 3x3 conv, twice, plus a 1x1 shortcut when the width
changes. Modules and their attribute names follow diffusers' ``AutoencoderKL`` (``ResnetBlock2D``,
``Downsample2D``, ``Upsample2D``, ``UNetMidBlock2D``, ``Attention``) so weights convert by renaming keys;
the code is vaekit's own.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-6  # diffusers' AutoencoderKL and the latent-diffusion code use 1e-6


def groups(channels: int, most: int = 32) -> int:
    """The most GroupNorm groups, at most ``most``, that divide ``channels`` (32 for 64, 8 for 8, 5 for 15)."""
    return next(g for g in range(min(most, channels), 0, -1) if channels % g == 0)


def group_norm(channels: int, most: int = 32) -> nn.GroupNorm:
    return nn.GroupNorm(groups(channels, most), channels, eps=NORM_EPS)


def feature_layout(x: torch.Tensor) -> torch.Tensor:
    """A feature map in the layout the networks compute in: channels-last on the CPU, where oneDNN's
    convolutions run faster in it (benchmarks/vs_diffusers.py times them alone in both) and GroupNorm, SiLU,
    padding, nearest up-sampling and the attention's (B, HW, C) view keep it without copies. Only the
    activations change layout: the parameters (and so checkpoints and exports) stay in the standard one."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" and x.dim() == 4 else x


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class ResnetBlock(nn.Module):
    """x + F(x), F = conv(silu(norm(conv(silu(norm(x)))))); a 1x1 conv maps x when the width changes."""

    # what --checkpoint-activations recomputes in backward (train/acceleration.py): the block, and inside its
    # recomputation each norm + SiLU once more, so the norm's output (kept only for SiLU's backward) is not held
    # while the block's backward runs: two maps fewer, 0.2 GB at the resnet recipe's peak (64 px, batch 64)
    recomputed = ("forward", "norm_act")

    def __init__(self, c_in: int, c_out: int, norm_groups: int = 32):
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in, norm_groups), conv3x3(c_in, c_out)
        self.norm2, self.conv2 = group_norm(c_out, norm_groups), conv3x3(c_out, c_out)
        self.conv_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.norm_act(self.norm1, x))
        h = self.conv2(self.norm_act(self.norm2, h))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h

    def norm_act(self, norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
        return F.silu(norm(x))


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding one zero row and column at the bottom and right (as diffusers'
    ``Downsample2D`` with ``padding=0``): n -> floor(n / 2), so equal weights give equal outputs."""

    recomputed = ("forward",)

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest up-sampling to ``size`` (twice the input, or one more for an odd level), then a 3x3 conv.
    For an even size this is diffusers' ``Upsample2D`` (nearest, scale 2) exactly."""

    recomputed = ("forward",)  # else the up-sampled map, 4x its input, is kept for the conv's backward

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


class Attention(nn.Module):
    """Single-head self-attention over the positions of a feature map, with a residual connection
    (the latent-diffusion ``AttnBlock``; diffusers' ``Attention`` with one head of the full width)."""

    recomputed = ("forward",)

    def __init__(self, channels: int, norm_groups: int = 32):
        super().__init__()
        self.group_norm = group_norm(channels, norm_groups)
        self.to_q, self.to_k, self.to_v = (nn.Linear(channels, channels) for _ in range(3))
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])  # key to_out.0, as diffusers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.group_norm(x).flatten(2).transpose(1, 2)  # (B, HW, C): a view of a channels-last map
        # (B, 1 head, HW, C): torch's fused CPU kernel (flash attention) takes 4-d inputs; 3-d ones go
        # through the unfused softmax(q k^T / sqrt(C)) v, which keeps the (HW x HW) weights for backward
        q, k, v = (proj(t).unsqueeze(1) for proj in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v).squeeze(1)
        return x + self.to_out[0](out).transpose(1, 2).reshape(b, c, h, w)


class MidBlock(nn.Module):
    """Two residual blocks at the lowest resolution, with self-attention between them when asked."""

    def __init__(self, channels: int, attention: bool, norm_groups: int = 32):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, norm_groups) for _ in range(2)])
        self.attentions = nn.ModuleList([Attention(channels, norm_groups)] if attention else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        for attention in self.attentions:
            x = attention(x)
        return self.resnets[1](x)


class DownBlock(nn.Module):
    """``blocks`` residual blocks at one resolution, then a stride-2 down-sampling unless it is the last level."""

    def __init__(self, c_in: int, c_out: int, blocks: int, downsample: bool, norm_groups: int = 32):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(c_in if i == 0 else c_out, c_out, norm_groups)
                                      for i in range(blocks)])
        self.downsamplers = nn.ModuleList([Downsample(c_out)] if downsample else [])
        last_with_sampler(self, self.downsamplers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resnets[:-1]:
            x = block(x)
        return self.last(x)

    def last(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[-1](x)
        for down in self.downsamplers:
            x = down(x)
        return x


class UpBlock(nn.Module):
    """``blocks + 1`` residual blocks (as the latent-diffusion decoder), then up-sampling unless last."""

    def __init__(self, c_in: int, c_out: int, blocks: int, upsample: bool, norm_groups: int = 32):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(c_in if i == 0 else c_out, c_out, norm_groups)
                                      for i in range(blocks + 1)])
        self.upsamplers = nn.ModuleList([Upsample(c_out)] if upsample else [])
        last_with_sampler(self, self.upsamplers)

    def forward(self, x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        for block in self.resnets[:-1]:
            x = block(x)
        return self.last(x, size)

    def last(self, x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        x = self.resnets[-1](x)
        for up in self.upsamplers:
            x = up(x, size)
        return x


def last_with_sampler(level: nn.Module, samplers: nn.ModuleList) -> None:
    """--checkpoint-activations recomputes a level's last residual block and its down- or up-sampling as one unit
    (``level.last``), which keeps only the block's input, already kept as the previous block's output, instead of
    the block's output too: 0.15 GB less at the resnet recipe's peak (64 px, batch 64), for no more compute. The
    block's norm + SiLU stay units of their own inside it (``norm_act``); a level without sampling keeps its
    blocks as they are."""
    level.recomputed = ("last",) if len(samplers) else ()
    if len(samplers):
        level.resnets[-1].recomputed = ("norm_act",)
        samplers[0].recomputed = ()
