"""ResNet encoder and decoder (``--network resnet``) for images of any size and channel count.

Levels of residual blocks (vaekit/nn/blocks.py: GroupNorm + SiLU, Ho et al. 2020; Rombach et al. 2022),
one per entry of ``widths``, with a stride-2 down-sampling between levels, a middle block at the lowest
resolution (self-attention there with ``attention``), and a mirrored decoder with nearest up-sampling.
Each level's size is floor(previous / 2) and the decoder up-samples to exactly the encoder's sizes, so
odd and non-power-of-two images come back at their own size (15 x 17 -> 7 x 8 -> 15 x 17).

Two latent shapes:

- a vector latent (the default): the last feature map goes through a 3x3 conv to ``head_channels``
  maps, is flattened and a dense layer gives ``dense`` features (``out_dim``) for the posterior; the
  decoder maps z (B, D) by a dense layer to those maps.
- a spatial latent (``latent_channels=C_z``), the latent map of the latent-diffusion autoencoder: the
  encoder gives the moment map (B, 2 C_z, h, w), means first, then log-variances (as diffusers'
  ``DiagonalGaussianDistribution`` splits them), and says so with ``out_dim = None`` and
  ``latent_shape = (C_z, h, w)``; the decoder takes z (B, C_z, h, w), or the same flattened.

Module names follow diffusers' ``AutoencoderKL`` (``encoder.conv_in``, ``encoder.down_blocks.0.resnets.0.norm1``,
``encoder.mid_block.attentions.0.to_q``, ``decoder.up_blocks.0.upsamplers.0.conv``, ...), with its
``quant_conv`` / ``post_quant_conv`` held by vaekit's encoder / decoder; see ``DIFFUSERS_KEYS``.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import VaekitError
from ..registry import NETWORKS
from .blocks import DownBlock, MidBlock, UpBlock, conv3x3, feature_layout, group_norm
from .common import with_condition
from .conv import _check_image

# vaekit key prefix -> diffusers AutoencoderKL key prefix (the rest of each key is the same)
DIFFUSERS_KEYS = {"encoder.quant_conv.": "quant_conv.", "decoder.post_quant_conv.": "post_quant_conv."}


class Plan:
    """The checked options and the feature-map size of each level, shared by encoder and decoder."""

    def __init__(self, data_shape: Sequence[int], widths: Sequence[int], blocks: int, latent_channels: Optional[int],
                 downsample: Optional[int], dense: int, head_channels: int, cond_dim: int, norm_groups: int = 32):
        self.channels, h, w = _check_image(data_shape, "resnet")
        self.norm_groups = int(norm_groups)
        if self.norm_groups < 1:
            raise VaekitError(f"the resnet network's norm_groups must be at least 1, got {norm_groups}")
        self.widths = [int(v) for v in widths]
        if not self.widths or min(self.widths) < 1 or int(blocks) < 1:
            raise VaekitError(f"the resnet network needs positive --widths and --blocks >= 1; got widths "
                              f"{list(widths)}, blocks {blocks}")
        self.blocks = int(blocks)
        halvings = len(self.widths) - 1
        if downsample is not None and int(downsample) != 2 ** halvings:
            levels = int(math.log2(downsample)) + 1 if downsample > 0 and downsample & (downsample - 1) == 0 else None
            hint = f"give {levels} widths" if levels else "give a power of 2"
            raise VaekitError(f"--downsample {downsample} does not match --widths {','.join(map(str, self.widths))}: "
                              f"{len(self.widths)} levels halve the image {halvings} times, f = {2 ** halvings}; "
                              f"{hint} or drop --downsample")
        self.sizes: List[Tuple[int, int]] = [(h, w)]
        for _ in range(halvings):
            ph, pw = self.sizes[-1]
            if min(ph, pw) < 2:
                raise VaekitError(f"the resnet network halves the image {halvings} times (--widths "
                                  f"{','.join(map(str, self.widths))}), but {h}x{w} images are too small for that; "
                                  f"give fewer widths")
            self.sizes.append((ph // 2, pw // 2))
        self.latent_channels = None if latent_channels is None else int(latent_channels)
        if self.latent_channels is not None and self.latent_channels < 1:
            raise VaekitError(f"--latent-channels must be at least 1, got {latent_channels}")
        if self.latent_channels is not None and cond_dim:
            raise VaekitError("the resnet network's spatial latent (--latent-channels) takes no condition; "
                              "drop --conditional, or drop --latent-channels for a vector latent")
        if self.latent_channels is None and (int(dense) < 1 or int(head_channels) < 1):
            raise VaekitError(f"the resnet network needs dense >= 1 and head_channels >= 1; got {dense}, "
                              f"{head_channels}")
        self.dense, self.head_channels = int(dense), int(head_channels)

    @property
    def map_shape(self) -> Tuple[int, int, int]:
        """What the encoder hands on before the latent: (C_z, h, w) or the vector head's (channels, h, w)."""
        return (self.latent_channels or self.head_channels, *self.sizes[-1])


class ResNetEncoder(nn.Module):
    """x (B, C, H, W) [+ condition (B, K)] -> features (B, dense), or the moment map (B, 2 C_z, h, w)."""

    def __init__(self, data_shape: Sequence[int], widths: Sequence[int] = (64, 128, 256), blocks: int = 2,
                 attention: bool = False, latent_channels: Optional[int] = None, downsample: Optional[int] = None,
                 dense: int = 512, head_channels: int = 16, cond_dim: int = 0, norm_groups: int = 32):
        super().__init__()
        plan = Plan(data_shape, widths, blocks, latent_channels, downsample, dense, head_channels, cond_dim,
                    norm_groups)
        ws, g = plan.widths, plan.norm_groups
        self.conv_in = conv3x3(plan.channels, ws[0])
        self.down_blocks = nn.ModuleList([
            DownBlock(ws[max(i - 1, 0)], w, plan.blocks, downsample=i < len(ws) - 1, norm_groups=g)
            for i, w in enumerate(ws)])
        self.mid_block = MidBlock(ws[-1], bool(attention), g)
        self.conv_norm_out = group_norm(ws[-1], g)
        self.conv_act = nn.SiLU()
        c, h, w = plan.map_shape
        if plan.latent_channels is not None:
            self.conv_out = conv3x3(ws[-1], 2 * c)           # diffusers' double_z
            self.quant_conv = nn.Conv2d(2 * c, 2 * c, 1)
            self.out_dim, self.latent_shape = None, (c, h, w)
        else:
            self.conv_out = conv3x3(ws[-1], c)
            self.fc = nn.Sequential(nn.Linear(c * h * w + cond_dim, plan.dense), nn.SiLU())
            self.out_dim = plan.dense

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.conv_in(feature_layout(x))
        for block in self.down_blocks:
            h = block(h)
        h = self.conv_out(self.conv_act(self.conv_norm_out(self.mid_block(h))))
        if self.out_dim is None:
            return self.quant_conv(h).contiguous()  # the moment map in the standard layout again
        return self.fc(with_condition(h.flatten(1), c))


class ResNetDecoder(nn.Module):
    """z (B, D) [+ condition], or z (B, C_z, h, w) -> likelihood parameters (B, P * C, H, W).

    ``latent_dim`` sizes the vector latent's dense layer; a spatial latent's shape comes from
    ``latent_channels`` and the image size instead."""

    # the full-size maps of the last norm, activation and conv (train/acceleration.py); the norm + SiLU once more
    # inside, as in the residual blocks (blocks.py)
    recomputed = ("head", "head_act")

    def __init__(self, latent_dim: int, data_shape: Sequence[int], params_per_value: int = 1,
                 widths: Sequence[int] = (64, 128, 256), blocks: int = 2, attention: bool = False,
                 latent_channels: Optional[int] = None, downsample: Optional[int] = None, dense: int = 512,
                 head_channels: int = 16, cond_dim: int = 0, norm_groups: int = 32):
        super().__init__()
        plan = Plan(data_shape, widths, blocks, latent_channels, downsample, dense, head_channels, cond_dim,
                    norm_groups)
        self.sizes, self.start = plan.sizes, plan.map_shape
        ws, g = list(reversed(plan.widths)), plan.norm_groups
        if plan.latent_channels is not None:
            self.post_quant_conv = nn.Conv2d(self.start[0], self.start[0], 1)
        else:
            self.fc = nn.Linear(latent_dim + cond_dim, math.prod(self.start))
        self.conv_in = conv3x3(self.start[0], ws[0])
        self.mid_block = MidBlock(ws[0], bool(attention), g)
        self.up_blocks = nn.ModuleList([
            UpBlock(ws[max(i - 1, 0)], w, plan.blocks, upsample=i < len(ws) - 1, norm_groups=g)
            for i, w in enumerate(ws)])
        self.conv_norm_out = group_norm(ws[-1], g)
        self.conv_act = nn.SiLU()
        self.conv_out = conv3x3(ws[-1], params_per_value * plan.channels)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        if hasattr(self, "post_quant_conv"):
            h = self.post_quant_conv(z.reshape(z.shape[0], *self.start))
        else:
            h = self.fc(with_condition(z, c)).view(z.shape[0], *self.start)
        h = self.mid_block(self.conv_in(feature_layout(h)))
        for i, block in enumerate(self.up_blocks):
            h = block(h, self.sizes[-2 - i] if i < len(self.up_blocks) - 1 else None)
        return self.head(h).contiguous()  # the standard layout again

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.head_act(h))

    def head_act(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv_act(self.conv_norm_out(h))


NETWORKS.register("resnet")((ResNetEncoder, ResNetDecoder))
