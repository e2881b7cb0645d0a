"""beta-VAE with a controlled capacity: the KL pulled towards a target C that grows during training."""
from __future__ import annotations

from typing import Optional

import torch

from ..contract.bounds import elbo_terms
from ..errors import VaekitError
from ..registry import OBJECTIVES
from .base import LossOutput, Objective, layer_terms


@OBJECTIVES.register("capacity")
class Capacity(Objective):
    """loss = recon + gamma * |KL - C(t)|, C(t) = w(t) * c_max.

    Burgess, Higgins, Pal, Matthey, Watters, Desjardins & Lerchner 2018, "Understanding
    disentangling in beta-VAE", eq. 8: C rises linearly from 0 to c_max (their dSprites run:
    gamma = 1000, C to 25 nats over 100,000 iterations).

    Objectives are not told the training step; the ramp is the trainer's linear warm-up weight w,
    0 -> 1 over ``warmup_epochs`` (``linear_warmup``), so ``--warmup-epochs`` sets how long C takes to
    reach c_max, and C = c_max without warm-up and in validation. The KL is the batch mean, as in the
    paper. The reported ``elbo`` is the true bound; ``capacity`` is C(t).
    """

    def __init__(self, gamma: float = 1000.0, c_max: float = 25.0):
        if gamma < 0 or c_max < 0:
            raise VaekitError(f"the capacity objective needs gamma >= 0 and c_max >= 0 (nats), got gamma={gamma}, "
                              f"c_max={c_max}")
        self.gamma, self.c_max = float(gamma), float(c_max)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, c)
        t = elbo_terms(out, x)
        target = float(kl_weight) * self.c_max
        loss = t.recon.mean() + self.gamma * (t.kl.mean() - target).abs()
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(),
                 "capacity": torch.tensor(target, device=x.device), **layer_terms(t.kls)}
        return LossOutput({"main": loss}, terms)
