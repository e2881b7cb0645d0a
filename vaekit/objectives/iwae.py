"""The importance-weighted bound (IWAE)."""
from __future__ import annotations

from typing import Optional

import torch

from ..errors import VaekitError
from ..contract.bounds import MAX_ROWS, importance_sampled_log_likelihood, importance_weight_parts
from ..registry import OBJECTIVES
from .base import LossOutput, Objective


@OBJECTIVES.register("iwae")
class IWAE(Objective):
    """loss = -log (1/k) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x) reparameterized.

    Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders", eq. 8. With
    k = 1 it is the single-sample ELBO with the KL estimated at the sample. A warm-up weight
    w scales log p(z) - log q(z) inside each weight. Terms: ``iwae`` (the k-sample bound,
    monitored) and ``elbo`` (the mean of the k single-sample bounds).
    """

    monitor = ("iwae", "max")

    def __init__(self, k: int = 50):
        if int(k) < 1:
            raise VaekitError(f"the iwae objective needs k >= 1 samples, got k={k}")
        self.k = int(k)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        # without gradients (validation) the k * B rows are run in chunks, so memory stays bounded
        max_rows = None if torch.is_grad_enabled() else MAX_ROWS
        log_px, log_ratio = importance_weight_parts(model, x, c, self.k, max_rows)   # (k, B) each
        true_w = log_px + log_ratio
        train_w = true_w if kl_weight == 1.0 else log_px + kl_weight * log_ratio
        terms = {"iwae": importance_sampled_log_likelihood(true_w).mean(), "elbo": true_w.mean()}
        return LossOutput({"main": -importance_sampled_log_likelihood(train_w).mean()}, terms)
