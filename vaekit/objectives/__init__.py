"""Training objectives; importing registers them by name."""
from .base import LossOutput
from .elbo import ELBO

__all__ = ["LossOutput", "ELBO"]
