"""The adversarial term of an image discriminator, added to any objective that passes its model output on.

Esser, Rombach & Ommer 2021, "Taming Transformers for High-Resolution Image Synthesis" (sec. 3.1), as
latent-diffusion's ``LPIPSWithDiscriminator`` trains its autoencoders (Rombach et al. 2022): the
discriminator D (``model.adversary``, e.g. the PatchGAN of vaekit/nn/patchgan.py) tells training images x
from reconstructions x~ (the mean of p(x|z)); the autoencoder adds

    L_main = L_rec + lambda * disc_weight * L_GAN,    L_GAN = -mean D(x~),
    lambda = ||grad_{G_L} L_rec|| / (||grad_{G_L} L_GAN|| + 1e-4),  clamped to [0, 1e4], no gradient,

(eq. 7, with taming's delta; G_L the decoder's last layer) and D minimises the hinge or the vanilla loss
on its own optimizer (parameter group ``discriminator``). L_rec is the wrapped objective's whole loss: its
other terms (a KL, a codebook loss) do not reach G_L, so its gradient there is the reconstruction's. Before
the optimizer step ``disc_start`` neither D nor its term is trained: D is not run, L_GAN has weight 0 and
the discriminator's loss has no graph, so its optimizer does not step (train/optimizers.py ``step_all``).
Outside training (validation, no gradients) lambda is 0, as in LDM's validation.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VaekitError
from .base import LossOutput, Objective

DELTA, MOST = 1e-4, 1e4  # taming-transformers' calculate_adaptive_weight


def hinge_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """(mean relu(1 - D(x)) + mean relu(1 + D(x~))) / 2: the hinge loss of Lim & Ye 2017 ("Geometric GAN",
    eq. 9), halved as taming's ``hinge_d_loss``. Logits of any shape -> a scalar."""
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


def vanilla_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """(mean -log sigmoid D(x) + mean -log(1 - sigmoid D(x~))) / 2: the cross-entropy of Goodfellow et al.
    2014 (eq. 1), halved as taming's ``vanilla_d_loss``."""
    return 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())


DISCRIMINATOR_LOSSES = {"hinge": hinge_loss, "vanilla": vanilla_loss}


def last_layer(model) -> nn.Parameter:
    """G_L: the weight of the decoder's last layer (a ``conv_out``, else its last conv or linear layer)."""
    out = getattr(model.decoder, "conv_out", None)
    layers = [out] if isinstance(out, nn.Module) else [
        m for m in model.decoder.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    if not layers:
        raise VaekitError(f"the {model.name} model's decoder has no conv or linear layer to take the adaptive "
                          "weight of the discriminator's term at; drop --discriminator")
    return layers[-1].weight


def adaptive_weight(rec_grad: torch.Tensor, gan_grad: torch.Tensor) -> torch.Tensor:
    """lambda of Esser et al. 2021, eq. 7, from the two gradients at G_L: clamped to [0, 1e4], detached."""
    return (rec_grad.norm() / (gan_grad.norm() + DELTA)).clamp(0.0, MOST).detach()


def weighted_gan(rec_loss: torch.Tensor, gan: torch.Tensor, fake: torch.Tensor, layer: torch.Tensor):
    """(lambda, lambda * L_GAN) for the autoencoder's loss. One pass back through D gives both dL_GAN/dG_L
    (for lambda) and dL_GAN/dx~; the term is then lambda * <x~, dL_GAN/dx~> less its own value plus L_GAN:
    the value of lambda * L_GAN with the same gradient for the autoencoder, without a second pass through D."""
    rec_grad, = torch.autograd.grad(rec_loss, layer, retain_graph=True)
    gan_grad, fake_grad = torch.autograd.grad(gan, (layer, fake), retain_graph=True)
    lam = adaptive_weight(rec_grad, gan_grad)
    linear = (fake * fake_grad).sum()
    return lam, lam * (gan.detach() + (linear - linear.detach()))


class Adversarial(Objective):
    """``base``'s losses plus the discriminator's term and the ``discriminator`` group's loss. Terms added:
    ``gan`` (L_GAN) and ``gan_weight`` (lambda * disc_weight, 0 before ``disc_start``)."""

    needs_step = True

    def __init__(self, base: Objective):
        self.base = base
        self.monitor = base.monitor

    def __getattr__(self, name: str):  # the wrapped objective's own attributes (beta, k, ...)
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None, kl_weight: float = 1.0,
                 step: Optional[int] = None) -> LossOutput:
        out = self.base(model, x, c, kl_weight=kl_weight)
        disc = model.adversary
        if disc is None:
            raise VaekitError(f"the {model.name} model has no discriminator; build it with model.discriminator")
        zero = out.loss.detach().new_zeros(())
        if step is not None and step < disc.disc_start:   # D sits out: no forward, no step
            return LossOutput({**out.losses, "discriminator": zero}, {**out.terms, "gan": zero, "gan_weight": zero},
                              out.output)
        if out.output is None:
            raise VaekitError(f"the {type(self.base).__name__} objective does not pass its reconstruction on, so a "
                              "discriminator's term cannot be added to it; use the elbo objective or drop "
                              "--discriminator")
        fake = out.output.px.mean                                       # (B, C, H, W) x~
        real_logits, fake_logits = disc(x.to(fake)), disc(fake)         # (B, 1, h, w) each
        gan = -fake_logits.mean()
        weight, term = zero, zero
        if torch.is_grad_enabled() and out.loss.requires_grad:
            lam, term = weighted_gan(out.loss, gan, fake, last_layer(model))
            weight, term = disc.disc_weight * lam, disc.disc_weight * term
        # x~ is not detached: each group's loss is back-propagated into that group's parameters only
        d_loss = DISCRIMINATOR_LOSSES[disc.loss](real_logits, fake_logits)
        return LossOutput({**out.losses, "main": out.loss + term, "discriminator": d_loss},
                          {**out.terms, "gan": gan, "gan_weight": weight}, out.output)
