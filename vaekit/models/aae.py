"""Adversarial autoencoder: a discriminator on latent codes replaces the KL term.

Makhzani, Shlens, Jaitly, Goodfellow & Frey 2016, "Adversarial Autoencoders" (ICLR workshop).
A discriminator D tells codes drawn from the prior p(z) ("real") from codes drawn from the
posterior q(z|x) of training data ("fake"); the encoder, as the GAN's generator, learns to
fool it, so the aggregated posterior q(z) = E_x q(z|x) matches p(z) (sec. 2, eq. 1). The
posterior is the composed Gaussian q(z|x) ("Gaussian posterior", sec. 2), as in pythae's
Adversarial_AE, and its loss has no KL term. The reported ``elbo`` is still the true bound of
this model (``elbo_terms``), so ``vaekit evaluate`` compares it with any VAE.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..contract.bounds import elbo_terms
from ..errors import VaekitError
from ..nn.common import mlp
from ..objectives.base import LossOutput, Objective
from ..registry import MODELS, OBJECTIVES
from .vae import VAE


def mlp_discriminator(in_dim: int, layers: int, hidden: int, what: str) -> nn.Sequential:
    """``layers`` ReLU layers of ``hidden`` units, then one logit: (B, in_dim) -> (B, 1)."""
    if int(layers) < 1 or int(hidden) < 1:
        raise VaekitError(f"the {what} discriminator needs disc_layers >= 1 and disc_hidden >= 1, got "
                          f"{layers} and {hidden}")
    return nn.Sequential(mlp([in_dim] + [int(hidden)] * int(layers), "relu"), nn.Linear(int(hidden), 1))


def own_groups(model: nn.Module, **groups) -> Dict[str, List[nn.Parameter]]:
    """``{"main": every other parameter, group: the parameters of the submodules it names, ...}``,
    in that order: ``own_groups(model, discriminator=["discriminator"])``."""
    taken = {g: [p for n in names for p in getattr(model, n).parameters()] for g, names in groups.items()}
    ids = {id(p) for params in taken.values() for p in params}
    return {"main": [p for p in model.parameters() if id(p) not in ids], **taken}


@MODELS.register("aae")
class AdversarialAE(VAE):
    """The composed VAE plus ``discriminator``: an MLP z (B, D) -> logit (B, 1), its own group.

    The paper's MNIST discriminator has two layers of 1000 ReLU units (appendix); vaekit's
    default is two of 256, the recipe uses the paper's size.
    """

    objectives = ("aae",)

    def __init__(self, *args, disc_layers: int = 2, disc_hidden: int = 256, **kwargs):
        super().__init__(*args, **kwargs)
        self.discriminator = mlp_discriminator(self.latent_dim, disc_layers, disc_hidden, "aae")

    def parameter_groups(self) -> Dict[str, List[nn.Parameter]]:
        return own_groups(self, discriminator=["discriminator"])


def discriminator_loss(real_logits: torch.Tensor, *fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(real) - sum_fakes log(1 - D(fake)), batch means: the discriminator's cross-entropy
    (Goodfellow et al. 2014, eq. 1). Logits (B, 1) each -> a scalar."""
    loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    for fake in fake_logits:
        loss = loss + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return loss


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(fake), the batch mean: the non-saturating generator loss (Goodfellow et al. 2014, sec. 3)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


@OBJECTIVES.register("aae")
class AdversarialObjective(Objective):
    """Autoencoder loss = -log p(x|z) + ``adversarial_weight`` * (-log D(z)), z ~ q(z|x);
    discriminator loss = -log D(z_p) - log(1 - D(z)), z_p ~ p(z), z detached.

    Makhzani et al. 2016, sec. 2: the reconstruction phase and the regularization phase, here
    from one forward pass (the trainer steps each group on its own loss). The weight is pythae's
    ``adversarial_loss_scale`` (default 0.5); ``kl_weight`` (warm-up) does not apply, as the
    loss has no KL. Terms: the true ``elbo``, ``recon``, ``kl`` and the generator loss ``gen``.
    """

    def __init__(self, adversarial_weight: float = 0.5):
        if adversarial_weight < 0:
            raise VaekitError(f"the aae objective's adversarial_weight must be 0 or more, got {adversarial_weight}")
        self.adversarial_weight = float(adversarial_weight)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        if not isinstance(model, AdversarialAE):
            raise VaekitError("the aae objective needs a latent discriminator: use --model aae")
        out = model(x, c)
        t = elbo_terms(out, x)
        z = out.latents[0].z                                             # (B, D)
        z_prior = model.prior_sample(z.shape[0], c).to(z)                # (B, D), no gradient
        gen = generator_loss(model.discriminator(z))                     # the encoder is the generator
        disc = discriminator_loss(model.discriminator(z_prior), model.discriminator(z.detach()))
        main = t.recon.mean() + self.adversarial_weight * gen
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), "gen": gen}
        return LossOutput({"main": main, "discriminator": disc}, terms)
