"""VQ-VAE: discrete latent codes from a codebook learned by exponential moving averages.

van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation Learning". Each example
is encoded to N vectors z_e (B, N, D), or to a latent map whose h * w positions are its vectors
(``--network resnet --latent-channels D``, the paper's setting for images, sec. 4.1); each is replaced
by its nearest of K codebook vectors (z_q). What every quantised model shares, and the ``vq``
objective, are in vaekit/models/quantized.py; the codebook in vaekit/models/quantizers.py.
"""
from __future__ import annotations

from torch import nn

from ..errors import VaekitError
from ..registry import MODELS
from .quantized import QuantizedModel, VQObjective  # noqa: F401  (VQObjective: registered there, named here)
from .quantizers import EMACodebook  # noqa: F401  (its historical home)


def check_codebook(name: str, codes, code_dim, decay=None, restart_after=0) -> None:
    """A one-line VaekitError for a codebook's sizes out of range (``decay``: an EMA codebook's)."""
    bad_decay = decay is not None and not 0 < decay < 1
    if codes < 2 or code_dim < 1 or bad_decay or restart_after < 0:
        ema = (", 0 < decay < 1", f", decay={decay}") if decay is not None else ("", "")
        raise VaekitError(f"{name} needs codes >= 2, code_dim >= 1{ema[0]} and restart_after >= 0; got codes={codes}, "
                          f"code_dim={code_dim}{ema[1]}, restart_after={restart_after}")


@MODELS.register("vqvae")
class VQVAE(QuantizedModel):
    """encoder -> z_e (B, N, D) -> nearest codes z_q of an EMA codebook -> decoder (straight-through).

    ``latent_dim`` (the config's) is N, the code vectors per example, for a vector-latent network;
    ``restart_after`` N > 0 also restarts codes unused for N steps (vaekit/models/quantizers.py).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, positions: int, data_shape,
                 num_classes=None, quantizer: nn.Module = None, *, codes: int = 512, code_dim: int = 64,
                 decay: float = 0.99, restart_after: int = 0):
        quantizer = quantizer or self.make_quantizer(code_dim, dict(codes=codes, decay=decay,
                                                                    restart_after=restart_after))
        super().__init__(encoder, decoder, likelihood, quantizer, positions, data_shape, num_classes)

    @classmethod
    def make_quantizer(cls, dim: int, o: dict) -> nn.Module:
        check_codebook("vqvae", o["codes"], dim, o["decay"], o["restart_after"])
        return EMACodebook(int(o["codes"]), int(dim), float(o["decay"]), restart_after=int(o["restart_after"]))
