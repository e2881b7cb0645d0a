"""Training objectives; importing registers them by name."""
from typing import Optional

from ..registry import OBJECTIVES
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

__all__ = ["build_objective", "LossOutput", "Objective", "ELBO", "IWAE", "MIWAE", "CIWAE", "BetaTC", "DIPVAE",
           "Capacity", "MMD", "SlicedWasserstein", "MSSSIM"]


def build_objective(config, dataset_size: Optional[int] = None):
    """The configured objective; one that names ``dataset_size`` in its constructor (beta-TC's
    minibatch-weighted sampling) is given the number of training examples. A model with a discriminator
    (``model.discriminator``) adds its adversarial term on top (objectives/adversarial.py)."""
    part = config.train.objective
    context = {} if dataset_size is None else {"dataset_size": int(dataset_size)}
    objective = OBJECTIVES.build(part.name, part.args, where="the objective", **context)
    if config.model.discriminator.name != "none":
        from .adversarial import Adversarial
        objective = Adversarial(objective)
    return objective
