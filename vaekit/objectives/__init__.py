"""Training objectives; importing registers them by name."""
from .base import LossOutput, Objective
from .elbo import ELBO
from .iwae import IWAE

__all__ = ["LossOutput", "Objective", "ELBO", "IWAE"]
