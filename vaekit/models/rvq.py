"""RVQ: an autoencoder whose latent map is quantized by residual vector quantization.

Zeghidour, Luebs, Omran, Skoglund & Tagliasacchi 2021, "SoundStream: An End-to-End Neural Audio Codec",
sec. 3.3 and alg. 1: S stages, each an EMA codebook of K codes quantizing the residual the stages before
left (vaekit/models/quantizers.py: ResidualVQ); S log2 K bits per position. The codebooks start at
encoder outputs of the first batch (SoundStream uses k-means there) and codes unused for
``restart_after`` steps are moved to encoder outputs of the batch, as SoundStream does.
"""
from __future__ import annotations

from torch import nn

from ..errors import VaekitError
from ..registry import MODELS
from .quantized import QuantizedModel
from .quantizers import ResidualVQ
from .vqvae import check_codebook


@MODELS.register("rvq")
class RVQ(QuantizedModel):
    """encoder -> z_e -> sum of S stage codes, each the nearest to what is left -> decoder (straight-through)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, positions: int, data_shape,
                 num_classes=None, quantizer: nn.Module = None, *, codes: int = 1024, code_dim: int = 64,
                 stages: int = 8, decay: float = 0.99, restart_after: int = 0):
        quantizer = quantizer or self.make_quantizer(code_dim, dict(codes=codes, stages=stages, decay=decay,
                                                                    restart_after=restart_after))
        super().__init__(encoder, decoder, likelihood, quantizer, positions, data_shape, num_classes)

    @classmethod
    def make_quantizer(cls, dim: int, o: dict) -> nn.Module:
        check_codebook("rvq", o["codes"], dim, o["decay"], o["restart_after"])
        if int(o["stages"]) < 1:
            raise VaekitError(f"rvq needs stages >= 1, got {o['stages']}")
        return ResidualVQ(int(o["codes"]), int(dim), int(o["stages"]), float(o["decay"]),
                          restart_after=int(o["restart_after"]))
