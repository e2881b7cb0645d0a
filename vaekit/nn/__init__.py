"""Encoder and decoder networks; importing registers them by name."""
from .conv import ConvDecoder, ConvEncoder
from .mlp import MLPDecoder, MLPEncoder

__all__ = ["ConvEncoder", "ConvDecoder", "MLPEncoder", "MLPDecoder"]
