"""FSQ: an autoencoder whose latent map is quantized by finite scalar quantization.

Mentzer, Minnen, Agustsson & Tschannen 2023, "Finite Scalar Quantization: VQ-VAE Made Simple": each of
the d channels is bounded and rounded to L_i levels (vaekit/models/quantizers.py: FiniteScalar); the
implicit codebook has prod(L_i) codes, there is no codebook or commitment loss, and the straight-through
gradient of the rounding trains the encoder.
"""
from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from ..errors import VaekitError
from ..registry import MODELS
from .quantized import QuantizedModel
from .quantizers import FiniteScalar


@MODELS.register("fsq")
class FSQ(QuantizedModel):
    """encoder -> z_e (d = len(levels) channels) -> bounded rounding per channel -> decoder."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, positions: int, data_shape,
                 num_classes=None, quantizer: nn.Module = None, *, levels: Sequence[int] = (8, 5, 5, 5)):
        super().__init__(encoder, decoder, likelihood, quantizer or self.make_quantizer(len(levels), dict(
            levels=levels)), positions, data_shape, num_classes)

    @staticmethod
    def code_dim_of(options: dict) -> Optional[int]:
        return len(FSQ.checked_levels(options["levels"]))

    @staticmethod
    def checked_levels(levels) -> list:
        ok = isinstance(levels, (list, tuple)) and levels and all(isinstance(v, int) and v >= 2 for v in levels)
        if not ok:
            raise VaekitError(f"fsq needs levels, a list of integers >= 2 per channel such as [8, 5, 5, 5]; got "
                              f"{levels!r}")
        return list(levels)

    @classmethod
    def make_quantizer(cls, dim: int, o: dict) -> nn.Module:
        return FiniteScalar(cls.checked_levels(o["levels"]))
