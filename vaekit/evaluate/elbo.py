"""Dataset-level ELBO, its terms and reconstruction error, in nats per example."""
from __future__ import annotations

import math
from typing import Dict

from ..data.batching import iterate_batches
from ..data.types import TensorData
from ..contract.bounds import elbo_terms
from ..models.helpers import evaluating
from ..registry import METRICS
from .base import Metric


def evaluate_elbo(model, data: TensorData, batch_size: int = 512) -> Dict[str, float]:
    """Single-sample ELBO over ``data`` (Kingma & Welling 2014, eq. 3), from :func:`elbo_terms`.

    Returns per-example means: ``elbo`` = E_q[log p(x|z)] - KL (nats, higher is better),
    ``recon`` = -E_q[log p(x|z)], ``kl`` = KL(q(z|x) || p(z)) summed over stochastic layers
    (``kl_1``, ``kl_2``, ... each, top first, when there are several), ``mse`` = squared error
    per value between x and its reconstruction, ``bits_per_dim`` = -elbo / (D ln 2), and ``n``
    examples. Evaluation draws z from the global torch RNG; seed it to repeat.
    """
    sums, n = {}, 0
    with evaluating(model):
        for x, y in iterate_batches(data, batch_size, device=model.device):
            c = y if model.num_classes else None
            t = elbo_terms(model(x, c), x)
            x_hat = model.reconstruct(x, c)
            values = {"elbo": t.elbo, "recon": t.recon, "kl": t.kl,
                      "mse": (x_hat - x).pow(2).flatten(1).mean(1)}
            if len(t.kls) > 1:
                values.update({f"kl_{i + 1}": kl for i, kl in enumerate(t.kls)})
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + float(v.sum())
            n += x.shape[0]
    if n == 0:
        return {"n": 0}
    result = {k: v / n for k, v in sums.items()}
    result["bits_per_dim"] = -result["elbo"] / (math.prod(model.data_shape) * math.log(2))
    result["n"] = n
    return result


@METRICS.register("elbo")
class ElboMetric(Metric):
    """The ELBO and its terms (see :func:`evaluate_elbo`)."""

    requires = ("likelihood",)
    title = "the ELBO"

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, float]:
        return evaluate_elbo(model, data)
