"""Training objectives; importing registers them by name."""
from .base import LossOutput, Objective
from .elbo import ELBO
from .iwae import IWAE
from .miwae import MIWAE
from .ciwae import CIWAE
from .tc import BetaTC
from .dip import DIPVAE
from .capacity import Capacity
from .mmd import MMD
from .swae import SlicedWasserstein
from .msssim import MSSSIM

__all__ = ["LossOutput", "Objective", "ELBO", "IWAE", "MIWAE", "CIWAE", "BetaTC", "DIPVAE", "Capacity", "MMD",
           "SlicedWasserstein", "MSSSIM"]
