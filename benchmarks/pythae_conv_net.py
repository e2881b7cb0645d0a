"""pythae 0.1.2's MNIST benchmark conv VAE, rebuilt as vaekit encoder/decoder modules.

The architecture is read from pythae/models/nn/benchmarks/mnist/convnets.py
(``Encoder_Conv_VAE_MNIST`` and ``Decoder_Conv_AE_MNIST``); no code is taken from there.
Encoder: four Conv2d(k4, s2, p1) + BatchNorm + ReLU, 1 -> 128 -> 256 -> 512 -> 1024 channels,
28 -> 14 -> 7 -> 3 -> 1 pixels, so the features are (B, 1024). pythae puts two Linear(1024, D)
heads on them (mu, log-variance); vaekit's Gaussian posterior puts one Linear(1024, 2D), the same
number of weights. Decoder: Linear(D, 1024*4*4), then ConvTranspose2d(k3, s2, p1) + BatchNorm +
ReLU, 1024 -> 512 (4 -> 7) -> 256 (7 -> 14), and ConvTranspose2d(256 -> 1, 14 -> 28). pythae ends
in a sigmoid (its BCE wants probabilities); here the decoder emits the Bernoulli logits.
At latent 16 pythae's pair has 17,232,033 parameters, and so does this one with vaekit's head.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

PYTHAE_PARAMETERS_AT_LATENT_16 = 11_050_656 + 6_181_377  # Encoder_Conv_VAE_MNIST + Decoder_Conv_AE_MNIST


def _block(layer: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(layer, nn.BatchNorm2d(channels), nn.ReLU())


class PythaeConvEncoder(nn.Module):
    """x (B, 1, 28, 28) -> features (B, 1024); ``channels_last`` runs the convs in NHWC."""

    def __init__(self, channels_last: bool = False):
        super().__init__()
        widths = [1, 128, 256, 512, 1024]
        self.convs = nn.Sequential(*[_block(nn.Conv2d(a, b, 4, 2, padding=1), b) for a, b in zip(widths, widths[1:])])
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.convs(x).flatten(1)  # (B, 1024, 1, 1) -> (B, 1024)


class PythaeConvDecoder(nn.Module):
    """z (B, D) -> Bernoulli logits (B, 1, 28, 28)."""

    def __init__(self, latent_dim: int = 16, channels_last: bool = False):
        super().__init__()
        self.fc = nn.Linear(latent_dim, 1024 * 4 * 4)
        self.deconvs = nn.Sequential(
            _block(nn.ConvTranspose2d(1024, 512, 3, 2, padding=1), 512),                    # 4 -> 7
            _block(nn.ConvTranspose2d(512, 256, 3, 2, padding=1, output_padding=1), 256),   # 7 -> 14
            nn.ConvTranspose2d(256, 1, 3, 2, padding=1, output_padding=1))                  # 14 -> 28
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], 1024, 4, 4)
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        return self.deconvs(h).contiguous()  # the likelihood reads the logits in NCHW order
