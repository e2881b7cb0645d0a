"""Importance-sampled estimate of the marginal log-likelihood log p(x)."""
from __future__ import annotations

import math
from typing import Dict

import torch

from ..data.batching import iterate_batches
from ..data.types import TensorData
from ..models.helpers import evaluating


@torch.no_grad()
def log_likelihood(model, x: torch.Tensor, y=None, k: int = 100) -> torch.Tensor:
    """log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x); shape (B,).

    The importance-weighted bound of Burda et al. 2016 (IWAE, eq. 8), which Rezende et al.
    2014 and Kingma & Welling 2014 use to report test log-likelihoods. It is a lower bound in
    expectation, at least the ELBO, and tightens as K grows.
    """
    q = model.encode(x, y)
    z = q.sample((k,))                                    # (K, B, D)
    flat = z.reshape(-1, z.shape[-1])                     # (K*B, D)
    yk = None if y is None else torch.as_tensor(y, device=model.device).repeat(k)
    px = model.decode(flat, yk)
    xk = x.to(model.device).repeat(k, *([1] * (x.dim() - 1)))
    log_px = px.log_prob(xk).view(k, -1)                  # (K, B)
    log_w = log_px + model.prior().log_prob(z) - q.log_prob(z)
    return torch.logsumexp(log_w, dim=0) - math.log(k)


def evaluate_log_likelihood(model, data: TensorData, k: int = 100, batch_size: int = 64) -> Dict[str, float]:
    """Mean importance-sampled log p(x) over ``data`` in nats per example, with its standard error."""
    values = []
    with evaluating(model):
        for x, y in iterate_batches(data, batch_size, device=model.device):
            values.append(log_likelihood(model, x, y, k).cpu())
    v = torch.cat(values).double()
    return {"log_likelihood": float(v.mean()), "log_likelihood_se": float(v.std() / math.sqrt(len(v))),
            "iw_samples": k}
