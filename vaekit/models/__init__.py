from .build import build_model
from .vae import VAE, ModelOutput

__all__ = ["build_model", "VAE", "ModelOutput"]
