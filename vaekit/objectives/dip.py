"""DIP-VAE: the ELBO plus a penalty pushing a covariance of the latent codes to the identity."""
from __future__ import annotations

from typing import Optional

import torch
from torch.distributions import Distribution

from ..contract.bounds import elbo_terms
from ..errors import VaekitError
from ..registry import OBJECTIVES
from .base import LossOutput, Objective

KINDS = {"i": 10.0, "ii": 1.0}   # type -> the paper's lambda_d / lambda_od


def dip_covariance(q: Distribution, kind: str) -> torch.Tensor:
    """The covariance DIP-VAE matches to the identity, (D, D), from the minibatch's posteriors.

    Kumar, Sattigeri & Balakrishnan 2018, "Variational Inference of Disentangled Latent Concepts
    from Unlabeled Observations": type I uses Cov_p(x)[mu(x)] (eq. 6); type II uses
    Cov_q(z)[z] = E_p(x)[Sigma(x)] + Cov_p(x)[mu(x)] (eq. 7), Sigma(x) diagonal here.
    """
    mu = q.mean                                                   # (B, D)
    centred = mu - mu.mean(0, keepdim=True)
    cov = centred.T @ centred / mu.shape[0]                       # (D, D), the minibatch (biased) covariance
    if kind == "ii":
        cov = cov + torch.diag(q.variance.mean(0))
    return cov


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2 (Kumar et al. 2018, eq. 6 and 7)."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1).pow(2).sum()


@OBJECTIVES.register("dip-vae")
class DIPVAE(Objective):
    """loss = -ELBO (KL warmed up by w) + lambda_od * sum_{i!=j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2.

    Kumar, Sattigeri & Balakrishnan 2018 (ICLR), eq. 6 (``kind="i"``: C = Cov[mu(x)]) and eq. 7
    (``kind="ii"``: C = Cov_q(z)[z]), C over the minibatch. The paper sets lambda_d = 10 lambda_od for
    type I and lambda_d = lambda_od for type II; ``lambda_d`` 0 (default) takes that ratio.
    Needs a posterior with a mean (and a variance for type II); the top stochastic layer is used.
    """

    def __init__(self, kind: str = "i", lambda_od: float = 10.0, lambda_d: float = 0.0):
        if kind not in KINDS:
            raise VaekitError(f"the dip-vae objective's kind must be 'i' or 'ii', got {kind!r}")
        if lambda_od < 0 or lambda_d < 0:
            raise VaekitError(f"the dip-vae objective needs lambda_od >= 0 and lambda_d >= 0, got {lambda_od} "
                              f"and {lambda_d}")
        self.kind, self.lambda_od = kind, float(lambda_od)
        self.lambda_d = float(lambda_d) if lambda_d > 0 else KINDS[kind] * self.lambda_od

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, c)
        t = elbo_terms(out, x)
        try:
            cov = dip_covariance(out.latents[0].q, self.kind)
        except NotImplementedError:
            raise VaekitError("the dip-vae objective needs a posterior with a closed-form mean and variance (the "
                              "gaussian posterior); drop --posterior or use --objective elbo") from None
        penalty = dip_penalty(cov, self.lambda_od, self.lambda_d)
        loss = t.recon.mean() + kl_weight * t.kl.mean() + penalty
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), "dip": penalty}
        return LossOutput({"main": loss}, terms)
