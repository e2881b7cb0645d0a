"""Dataset-level ELBO, its terms and reconstruction error, in nats per example."""
from __future__ import annotations

import math
from typing import Dict

from ..data.batching import iterate_batches
from ..data.types import TensorData
from ..distributions import kl_term
from ..models.helpers import evaluating


def evaluate_elbo(model, data: TensorData, batch_size: int = 512) -> Dict[str, float]:
    """Single-sample ELBO over ``data`` (Kingma & Welling 2014, eq. 3).

    Returns per-example means: ``elbo`` = E_q[log p(x|z)] - KL (nats, higher is better),
    ``recon`` = -E_q[log p(x|z)], ``kl`` = KL(q(z|x) || p(z)), ``mse`` = squared error
    per value between x and the decoded posterior mean, ``bits_per_dim`` = -elbo / (D ln 2),
    and ``n`` examples. Evaluation draws z from the global torch RNG; seed it to repeat.
    """
    sums = {"elbo": 0.0, "recon": 0.0, "kl": 0.0, "mse": 0.0}
    n = 0
    with evaluating(model):
        for x, y in iterate_batches(data, batch_size, device=model.device):
            out = model(x, y)
            recon = -out.px.log_prob(x)
            kl = kl_term(out.q, out.prior, out.z)
            x_hat = model.decode(out.q.mean, y).mean
            sums["recon"] += float(recon.sum())
            sums["kl"] += float(kl.sum())
            sums["elbo"] += float((-(recon + kl)).sum())
            sums["mse"] += float((x_hat - x).pow(2).flatten(1).mean(1).sum())
            n += x.shape[0]
    if n == 0:
        return {"n": 0}
    result = {k: v / n for k, v in sums.items()}
    result["bits_per_dim"] = -result["elbo"] / (math.prod(model.data_shape) * math.log(2))
    result["n"] = n
    return result
