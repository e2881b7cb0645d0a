"""VQGAN's quantization: a codebook learned by gradient, on the ResNet's latent map.

Esser, Rombach & Ommer 2021, "Taming Transformers for High-Resolution Image Synthesis", eq. 4:
L_VQ = ||x - x_hat|| + ||sg[E(x)] - z_q||^2 + beta ||sg[z_q] - E(x)||^2, beta = 0.25, straight-through
gradient to the encoder. The perceptual (LPIPS) and patch-discriminator terms of its eq. 5 join from
their own parts (``--perceptual``, the PatchGAN); this structure is the quantized autoencoder.
"""
from __future__ import annotations

from torch import nn

from ..registry import MODELS
from .quantized import QuantizedModel
from .quantizers import LearnedCodebook
from .vqvae import check_codebook


@MODELS.register("vqgan")
class VQGAN(QuantizedModel):
    """encoder -> z_e map -> nearest of K learned codes -> decoder; the vq objective adds the codebook loss."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, positions: int, data_shape,
                 num_classes=None, quantizer: nn.Module = None, *, codes: int = 1024, code_dim: int = 256,
                 restart_after: int = 0):
        quantizer = quantizer or self.make_quantizer(code_dim, dict(codes=codes, restart_after=restart_after))
        super().__init__(encoder, decoder, likelihood, quantizer, positions, data_shape, num_classes)

    @classmethod
    def make_quantizer(cls, dim: int, o: dict) -> nn.Module:
        check_codebook("vqgan", o["codes"], dim, restart_after=o["restart_after"])
        return LearnedCodebook(int(o["codes"]), int(dim), restart_after=int(o["restart_after"]))
