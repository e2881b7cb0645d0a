"""The PatchGAN image discriminator (``model.discriminator.name = patchgan``).

Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial Networks" (sec. 3.2.2,
the N x N patch discriminator), in the ``NLayerDiscriminator`` layout that taming-transformers (Esser et al.
2021) and latent-diffusion (Rombach et al. 2022) train their autoencoders with: a 4x4 stride-2 conv and
LeakyReLU(0.2); ``n_layers - 1`` more 4x4 stride-2 convs, each with a norm, the width doubling up to 8x;
one 4x4 stride-1 conv with a norm; a 4x4 stride-1 conv to one logit per patch (B, 1, h, w).

The module also holds the settings of its loss term (vaekit/objectives/adversarial.py), as LDM's
``LPIPSWithDiscriminator`` does: ``loss`` (hinge or vanilla), ``disc_weight`` and ``disc_start``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VaekitError
from ..registry import DISCRIMINATORS
from .blocks import group_norm

NORMS = ("batch", "group", "none")
LOSSES = ("hinge", "vanilla")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return group_norm(channels) if kind == "group" else nn.Identity()


@DISCRIMINATORS.register("patchgan")
class PatchDiscriminator(nn.Module):
    """Images (B, C, H, W) -> patch logits (B, 1, h, w).

    ``n_layers`` stride-2 convs, ``width`` channels in the first (taming's ``ndf``), ``norm``: batch (the
    original; its running statistics are buffers, so they are saved and resumed), group or none. Images
    smaller than 3 * 2 ** n_layers pixels a side (24 for n_layers 3) would leave no patch: they are
    zero-padded to that size (LDM's 256 px images never are).
    """

    def __init__(self, data_shape: Sequence[int], n_layers: int = 3, width: int = 64, norm: str = "batch",
                 loss: str = "hinge", disc_weight: float = 1.0, disc_start: int = 0):
        super().__init__()
        if len(data_shape) != 3:
            raise VaekitError(f"the patchgan discriminator reads images (C, H, W), and this data has examples of "
                              f"shape {tuple(data_shape)}; drop model.discriminator or train on images")
        checks = [(int(n_layers) >= 1, f"n_layers must be at least 1, got {n_layers}"),
                  (int(width) >= 1, f"width must be at least 1, got {width}"),
                  (norm in NORMS, f"norm must be one of {', '.join(NORMS)}, got {norm!r}"),
                  (loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {loss!r}"),
                  (float(disc_weight) >= 0, f"disc_weight must be 0 or more, got {disc_weight}"),
                  (int(disc_start) >= 0, f"disc_start must be 0 or more steps, got {disc_start}")]
        for ok, message in checks:
            if not ok:
                raise VaekitError(f"the patchgan discriminator's {message} (model.discriminator.args)")
        self.loss, self.disc_weight, self.disc_start = loss, float(disc_weight), int(disc_start)
        self.min_size = 3 * 2 ** int(n_layers)
        bias = norm != "batch"  # a BatchNorm's shift replaces the conv's bias, as in taming's layout
        layers = [nn.Conv2d(data_shape[0], width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        out = width
        for n in range(1, int(n_layers) + 1):
            c_in, out = out, width * min(2 ** n, 8)
            stride = 2 if n < int(n_layers) else 1
            layers += [nn.Conv2d(c_in, out, 4, stride=stride, padding=1, bias=bias), _norm(norm, out),
                       nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(out, 1, 4, stride=1, padding=1))
        self.layers = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """taming's ``weights_init``: conv weights N(0, 0.02), norm scales N(1, 0.02), shifts 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            dh, dw = max(0, self.min_size - h), max(0, self.min_size - w)
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return self.layers(x)
