"""The evidence lower bound with a beta weight, KL warm-up and free bits."""
from __future__ import annotations

from typing import Optional

import torch

from ..distributions import kl_per_dimension, kl_term
from ..registry import OBJECTIVES
from .base import LossOutput


@OBJECTIVES.register("elbo")
class ELBO:
    """loss = -E_q[log p(x|z)] + w * beta * KL(q(z|x) || p(z)).

    - beta > 1 is the beta-VAE (Higgins et al. 2017).
    - ``kl_weight`` w is the warm-up factor the trainer passes (0 -> 1 linearly;
      Bowman et al. 2016, Sonderby et al. 2016).
    - ``free_bits`` lambda (nats per latent dimension) replaces each dimension's batch-mean
      KL by max(lambda, KL_j) (Kingma et al. 2016, IAF paper, eq. 15).
    The reported ``elbo`` term is always the true bound (beta = 1, no free bits).
    """

    def __init__(self, beta: float = 1.0, free_bits: float = 0.0):
        self.beta = float(beta)
        self.free_bits = float(free_bits)

    def __call__(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, y)
        recon = -out.px.log_prob(x)                  # (B,)
        kl = kl_term(out.q, out.prior, out.z)        # (B,)
        kl_penalty = kl.mean()
        if self.free_bits > 0:
            per_dim = kl_per_dimension(out.q, out.prior)   # (B, D) or None
            if per_dim is not None:
                kl_penalty = per_dim.mean(0).clamp(min=self.free_bits).sum()
            else:
                kl_penalty = kl_penalty.clamp(min=self.free_bits * model.latent_dim)
        loss = recon.mean() + kl_weight * self.beta * kl_penalty
        return LossOutput(loss, {"elbo": -(recon + kl).mean(), "recon": recon.mean(), "kl": kl.mean()})
