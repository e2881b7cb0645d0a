"""The multiply importance-weighted bound (MIWAE): M independent IWAE_K bounds, averaged."""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..contract.bounds import MAX_ROWS, importance_sampled_log_likelihood, importance_weight_parts
from ..errors import VaekitError
from ..registry import OBJECTIVES
from .base import LossOutput, Objective


def grouped_log_weights(model, x: torch.Tensor, c: Optional[torch.Tensor], m: int, k: int,
                        kl_weight: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """True and training log weights for m * k posterior samples per example, (M, K, B) each.

    The samples come from :func:`importance_weight_parts` (sample-major), so sample m * K + j is
    the j-th of group m. The warm-up weight w scales log p(z) - log q(z) in the training weights.
    """
    max_rows = None if torch.is_grad_enabled() else MAX_ROWS
    log_px, log_ratio = importance_weight_parts(model, x, c, m * k, max_rows)     # (M*K, B) each
    true_w = log_px + log_ratio
    train_w = true_w if kl_weight == 1.0 else log_px + kl_weight * log_ratio
    b = x.shape[0]
    return true_w.view(m, k, b), train_w.view(m, k, b)


def miwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """(1/M) sum_m log (1/K) sum_k w_mk, (B,), from log weights (M, K, B).

    Rainforth et al. 2018, "Tighter Variational Bounds are Not Necessarily Better", eq. 7 (MIWAE).
    """
    return torch.stack([importance_sampled_log_likelihood(w) for w in log_w]).mean(0)


def check_samples(name: str, **counts: int) -> None:
    bad = {k: v for k, v in counts.items() if int(v) < 1}
    if bad:
        raise VaekitError(f"the {name} objective needs at least 1 sample in each of "
                          f"{', '.join(counts)}; got {', '.join(f'{k}={v}' for k, v in bad.items())}")


@OBJECTIVES.register("miwae")
class MIWAE(Objective):
    """loss = -(1/M) sum_m log (1/K) sum_k p(x, z_mk) / q(z_mk|x), z_mk ~ q(z|x) reparameterized.

    Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh 2018, "Tighter Variational Bounds are Not
    Necessarily Better", eq. 7: M independent IWAE_K estimates averaged. M = 1 is IWAE_K (Burda et
    al. 2016); K = 1 is the M-sample ELBO. A larger M gives the encoder a better gradient signal
    to noise ratio than IWAE_{MK}. Terms: ``miwae`` (monitored), ``iwae`` (the M*K-sample bound from
    the same draws) and ``elbo`` (the mean single-sample bound).
    """

    monitor = ("miwae", "max")
    name = "miwae"  # for messages; PIWAE shares the constructor

    def __init__(self, m: int = 8, k: int = 8):
        check_samples(self.name, m=m, k=k)
        self.m, self.k = int(m), int(k)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        true_w, train_w = grouped_log_weights(model, x, c, self.m, self.k, kl_weight)   # (M, K, B)
        flat = true_w.reshape(-1, x.shape[0])
        terms = {"miwae": miwae_bound(true_w).mean(), "iwae": importance_sampled_log_likelihood(flat).mean(),
                 "elbo": true_w.mean()}
        return LossOutput({"main": -miwae_bound(train_w).mean()}, terms)
