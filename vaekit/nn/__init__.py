"""Encoder and decoder networks; importing registers them by name."""
from .conv import ConvDecoder, ConvEncoder
from .mlp import MLPDecoder, MLPEncoder
from .patchgan import PatchDiscriminator
from .resnet import ResNetDecoder, ResNetEncoder

__all__ = ["ConvEncoder", "ConvDecoder", "MLPEncoder", "MLPDecoder", "ResNetEncoder", "ResNetDecoder",
           "PatchDiscriminator"]
