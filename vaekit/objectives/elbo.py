"""The evidence lower bound with a beta weight, KL warm-up and free bits."""
from __future__ import annotations

from typing import Optional

import torch

from ..distributions import kl_per_dimension
from ..contract.bounds import elbo_terms
from ..errors import VaekitError
from ..registry import OBJECTIVES
from .base import LossOutput, Objective, layer_terms


@OBJECTIVES.register("elbo")
class ELBO(Objective):
    """loss = -E_q[log p(x|z)] + w * beta * sum_layers KL(q || p).

    - beta > 1 is the beta-VAE (Higgins et al. 2017).
    - ``kl_weight`` w is the warm-up factor the trainer passes (0 -> 1 linearly;
      Bowman et al. 2016, Sonderby et al. 2016).
    - ``free_bits`` lambda (nats per latent dimension) replaces each dimension's batch-mean
      KL by max(lambda, KL_j) (Kingma et al. 2016, IAF paper, eq. 15); a layer without a
      per-dimension closed form is clamped as a whole at lambda * its dimensions.
    The reported ``elbo`` term is always the true bound (beta = 1, no free bits).
    """

    def __init__(self, beta: float = 1.0, free_bits: float = 0.0):
        if beta < 0 or free_bits < 0:
            raise VaekitError(f"the elbo objective needs beta >= 0 and free_bits >= 0, got beta={beta}, "
                              f"free_bits={free_bits}")
        self.beta = float(beta)
        self.free_bits = float(free_bits)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, c)
        t = elbo_terms(out, x)
        penalty = t.kl.mean()
        if self.free_bits > 0:
            penalty = sum(self._free_bits(layer, kl) for layer, kl in zip(out.latents, t.kls))
        loss = t.recon.mean() + kl_weight * self.beta * penalty
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), **layer_terms(t.kls)}
        return LossOutput({"main": loss}, terms, out)

    def _free_bits(self, layer, kl: torch.Tensor) -> torch.Tensor:
        per_dim = kl_per_dimension(layer.q, layer.prior)                  # (B, D) or None
        if per_dim is not None:
            return per_dim.mean(0).clamp(min=self.free_bits).sum()
        dims = max(1, layer.z[0].numel())
        return kl.mean().clamp(min=self.free_bits * dims)
