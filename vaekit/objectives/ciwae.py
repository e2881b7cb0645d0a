"""The combination importance-weighted bound (CIWAE): a convex mix of the ELBO and IWAE."""
from __future__ import annotations

from typing import Optional

import torch

from ..contract.bounds import importance_sampled_log_likelihood
from ..errors import VaekitError
from ..registry import OBJECTIVES
from .base import LossOutput, Objective
from .miwae import check_samples, grouped_log_weights


def ciwae_bound(log_w: torch.Tensor, beta: float) -> torch.Tensor:
    """beta * (1/K) sum_k log w_k + (1 - beta) * log (1/K) sum_k w_k, (B,), from log weights (K, B).

    Rainforth et al. 2018, "Tighter Variational Bounds are Not Necessarily Better", eq. 8 (CIWAE).
    """
    return beta * log_w.mean(0) + (1.0 - beta) * importance_sampled_log_likelihood(log_w)


@OBJECTIVES.register("ciwae")
class CIWAE(Objective):
    """loss = -[beta * ELBO_K + (1 - beta) * IWAE_K], both from the same K samples.

    Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh 2018, "Tighter Variational Bounds are Not
    Necessarily Better", eq. 8. ELBO_K is the mean of the K single-sample bounds log w_k (the KL
    estimated at the sample); beta = 1 is the ELBO, beta = 0 is IWAE_K. Terms: ``ciwae`` (monitored),
    ``iwae`` and ``elbo`` from the same draws.
    """

    monitor = ("ciwae", "max")

    def __init__(self, k: int = 64, beta: float = 0.5):
        check_samples("ciwae", k=k)
        if not 0.0 <= beta <= 1.0:
            raise VaekitError(f"the ciwae objective's beta (the weight of the ELBO) must be in [0, 1], got {beta}")
        self.k, self.beta = int(k), float(beta)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        true_w, train_w = grouped_log_weights(model, x, c, 1, self.k, kl_weight)       # (1, K, B)
        true_w, train_w = true_w[0], train_w[0]                                          # (K, B)
        terms = {"ciwae": ciwae_bound(true_w, self.beta).mean(),
                 "iwae": importance_sampled_log_likelihood(true_w).mean(), "elbo": true_w.mean()}
        return LossOutput({"main": -ciwae_bound(train_w, self.beta).mean()}, terms)
