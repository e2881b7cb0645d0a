"""Training objectives; importing registers them by name."""
from typing import Optional

from ..errors import VaekitError
from ..nn.lpips_weights import load_lpips, unavailable
from ..registry import OBJECTIVES, accepted_args
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
from .perceptual import Perceptual, PerceptualTerm

__all__ = ["build_objective", "LossOutput", "Objective", "ELBO", "IWAE", "MIWAE", "CIWAE", "BetaTC", "DIPVAE",
           "Capacity", "MMD", "SlicedWasserstein", "MSSSIM", "Perceptual", "PerceptualTerm"]


def build_objective(config, dataset_size: Optional[int] = None):
    """The configured objective; one that names ``dataset_size`` in its constructor (beta-TC's
    minibatch-weighted sampling) is given the number of training examples. With ``train.perceptual``
    W > 0, one that names ``perceptual`` gets the LPIPS term to add itself; any other is wrapped in
    :class:`~vaekit.objectives.perceptual.Perceptual` (a missing or wrong weights file fails here). A model
    with a discriminator (``model.discriminator``) adds its adversarial term on top of both
    (objectives/adversarial.py), so the adaptive weight sees the perceptual term in L_rec, as LDM's does."""
    part = config.train.objective
    context = {} if dataset_size is None else {"dataset_size": int(dataset_size)}
    term = perceptual_term(config)
    objective = OBJECTIVES.build(part.name, part.args, where="the objective", perceptual=term, **context)
    if term is not None and "perceptual" not in accepted_args(OBJECTIVES.get(part.name)):
        objective = Perceptual(objective, term)
    if config.model.discriminator.name != "none":
        from .adversarial import Adversarial
        objective = Adversarial(objective)
    return objective


def perceptual_term(config) -> Optional[PerceptualTerm]:
    """The LPIPS term of ``train.perceptual`` with the files of ``config.lpips``, or None when W is 0."""
    weight = config.train.perceptual
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
        raise VaekitError(f"--perceptual must be a weight of 0 or more, got {weight!r}")
    if weight == 0:
        return None
    lp = config.lpips
    why = unavailable(lp.net, lp.backbone, lp.lin)
    if why:  # a recipe's LPIPS term (autoencoder-kl, vqgan) without its files: the way on without it, too
        raise VaekitError(f"--perceptual {weight:g}: {why}; or pass --perceptual 0 to train without the "
                          "perceptual term")
    return PerceptualTerm(weight, load_lpips(lp.net, lp.backbone, lp.lin))
