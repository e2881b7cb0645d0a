"""FactorVAE: a VAE plus a total-correlation discriminator with its own optimizer.

Kim & Mnih 2018, "Disentangling by Factorising". The discriminator D tells samples of
q(z) from samples of the product of its marginals (each latent dimension permuted across
the batch); its logit difference estimates the total correlation TC(z) (eq. 3), which the
VAE's loss penalises with weight gamma.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VaekitError
from ..objectives.base import LossOutput, Objective
from ..registry import MODELS, OBJECTIVES
from ..contract.bounds import elbo_terms
from .vae import VAE


@MODELS.register("factorvae")
class FactorVAE(VAE):
    """The composed VAE plus ``discriminator``: an MLP z -> 2 logits (joint, permuted).

    The paper's discriminator has 6 layers of 1000 units with leaky ReLU (appendix). Its
    parameters form the ``"discriminator"`` group, stepped by its own optimizer.
    """

    def __init__(self, *args, disc_layers: int = 6, disc_hidden: int = 1000, **kwargs):
        super().__init__(*args, **kwargs)
        if disc_layers < 1 or disc_hidden < 1:
            raise VaekitError(f"the factorvae discriminator needs disc_layers >= 1 and disc_hidden >= 1, got "
                              f"{disc_layers} and {disc_hidden}")
        layers, width = [], self.latent_dim
        for _ in range(disc_layers):
            layers += [nn.Linear(width, disc_hidden), nn.LeakyReLU(0.2)]
            width = disc_hidden
        self.discriminator = nn.Sequential(*layers, nn.Linear(width, 2))

    def parameter_groups(self) -> Dict[str, List[nn.Parameter]]:
        disc = {id(p) for p in self.discriminator.parameters()}
        return {"main": [p for p in self.parameters() if id(p) not in disc],
                "discriminator": list(self.discriminator.parameters())}


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Each latent dimension shuffled across the batch independently: a sample of prod_j q(z_j)
    (Kim & Mnih 2018, Algorithm 1). z (B, D) -> (B, D)."""
    b, d = z.shape
    index = torch.argsort(torch.rand(b, d, device=z.device), dim=0)   # (B, D) a permutation per column
    return torch.gather(z, 0, index)


@OBJECTIVES.register("factor")
class FactorObjective(Objective):
    """VAE loss = -ELBO + gamma * TC, TC ~= E_q(z)[log D(z) / (1 - D(z))] (Kim & Mnih 2018, eq. 3);
    discriminator loss = cross-entropy of D on q(z) samples (class 0) and permuted ones (class 1).

    The permuted samples come from the same batch, and both losses from one forward pass: the
    trainer gives each optimizer the gradient of its own loss only.
    """

    def __init__(self, gamma: float = 10.0):
        if gamma < 0:
            raise VaekitError(f"the factor objective's gamma (the weight of the total correlation) must be 0 or "
                              f"more, got {gamma}")
        self.gamma = float(gamma)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        if not hasattr(model, "discriminator"):
            raise VaekitError("the factor objective needs a model with a discriminator: use --model factorvae")
        out = model(x, c)
        t = elbo_terms(out, x)
        z = out.latents[0].z.flatten(1)                                 # (B, D): a latent map flattened
        logits = model.discriminator(z)                                 # (B, 2)
        tc = (logits[:, 0] - logits[:, 1]).mean()
        vae_loss = t.recon.mean() + kl_weight * t.kl.mean() + self.gamma * tc
        z_joint, z_perm = z.detach(), permute_dims(z.detach())
        ones = torch.ones(z.shape[0], dtype=torch.long, device=z.device)
        disc_loss = 0.5 * (F.cross_entropy(model.discriminator(z_joint), 0 * ones)
                           + F.cross_entropy(model.discriminator(z_perm), ones))
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), "tc": tc}
        return LossOutput({"main": vae_loss, "discriminator": disc_loss}, terms)
