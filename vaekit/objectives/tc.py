"""beta-TC-VAE: the KL term split into index-code MI, total correlation and dimension-wise KL."""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch
from torch.distributions import Distribution, Independent

from ..contract.bounds import elbo_terms
from ..errors import VaekitError
from ..registry import OBJECTIVES
from .base import LossOutput, Objective

SAMPLINGS = ("mws", "mss")


def _factorized(d: Distribution, what: str) -> Distribution:
    """The per-dimension base of a factorized distribution (batch (..., D)), or a clear error."""
    if isinstance(d, Independent) and d.reinterpreted_batch_ndims == 1:
        return d.base_dist
    raise VaekitError(f"the beta-tc objective needs a factorized {what} (the gaussian posterior and the normal "
                      f"prior), got {type(d).__name__}; drop --posterior/--prior or use --objective elbo")


def log_weight_matrix(b: int, dataset_size: int, sampling: str, device=None) -> torch.Tensor:
    """log r_ij, (B, B): the weight of q(z_i | x_j) in the estimate of q(z_i) = (1/N) sum_n q(z_i | n).

    Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", section 4 and appendix C:
    - ``mws`` (minibatch weighted sampling): 1 / (N M) for every j, N the data set size, M = B.
    - ``mss`` (minibatch stratified sampling, appendix C.2): with M = B - 1 other examples in the
      batch, 1/N for the own example (the diagonal), (N - M) / (N M) for one other (here the next,
      j = i + 1 mod B) and 1/M for the remaining M - 1, so that every row sums to 1. The authors'
      code (``_log_importance_weight_matrix``) writes the 1/N entries with a stride of B, which lands
      them in column 0 rather than on the diagonal, so its rows do not all sum to 1; this follows the
      appendix.
    ``dataset_size`` 0 (unknown) treats the minibatch as the whole data set: q(z) is then the
    batch's empirical aggregate (1/B) sum_j q(z | x_j), for both samplings.
    """
    if dataset_size <= 0 or b < 2:
        return torch.full((b, b), -math.log(b), device=device)
    n = max(int(dataset_size), b)
    if sampling == "mws":
        return torch.full((b, b), -math.log(n * b), device=device)
    m, i = b - 1, torch.arange(b, device=device)
    w = torch.full((b, b), 1.0 / m, device=device)
    w[i, i] = 1.0 / n
    w[i, (i + 1) % b] = (n - m) / (n * m)
    return w.log()


def tc_decomposition(q: Distribution, prior: Distribution, z: torch.Tensor, dataset_size: int = 0,
                     sampling: str = "mws") -> Dict[str, torch.Tensor]:
    """Index-code MI, total correlation and dimension-wise KL, per-example (B,) each, at z ~ q(z|x).

    Chen et al. 2018, eq. 2: E_p(x) KL(q(z|x) || p(z)) = I_q(z; x) + KL(q(z) || prod_j q(z_j))
    + sum_j KL(q(z_j) || p(z_j)), each estimated at the sample with log q(z) and log q(z_j) from
    the minibatch (:func:`log_weight_matrix`). The three add up to log q(z|x) - log p(z) exactly.
    """
    qb, pb = _factorized(q, "posterior"), _factorized(prior, "prior")
    b = z.shape[0]
    log_q_zx = qb.log_prob(z).sum(-1)                                   # (B,)   log q(z_i | x_i)
    mat = qb.log_prob(z.unsqueeze(1))                                   # (B, B, D) log q(z_id | x_j)
    log_r = log_weight_matrix(b, dataset_size, sampling, z.device).to(z.dtype)   # (B, B)
    log_qz = torch.logsumexp(mat.sum(-1) + log_r, dim=1)                # (B,)   log q(z_i)
    log_qz_prod = torch.logsumexp(mat + log_r.unsqueeze(-1), dim=1).sum(-1)       # (B,) sum_d log q(z_id)
    log_pz = pb.log_prob(z).sum(-1)                                     # (B,)
    return {"mi": log_q_zx - log_qz, "tc": log_qz - log_qz_prod, "dwkl": log_qz_prod - log_pz}


@OBJECTIVES.register("beta-tc")
class BetaTC(Objective):
    """loss = recon + w * (alpha * MI + beta * TC + gamma * dimension-wise KL).

    Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of Disentanglement in Variational
    Autoencoders", eq. 4 (the paper's beta-TC-VAE sets alpha = gamma = 1 and tunes beta; 6 is
    among its dSprites settings). w is the trainer's warm-up weight.

    ``dataset_size`` N: the MWS/MSS estimates of log q(z) need the number of training examples,
    which the trainer supplies; 0 (constructed by hand without it) treats each minibatch as
    the data set (see :func:`log_weight_matrix`). N changes the estimates by constants only, so the
    gradients of TC under ``mws`` do not depend on it; the reported values do (TC under mws
    is offset by (D - 1) log N, the paper's estimator). The reported ``elbo`` is the true bound.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 6.0, gamma: float = 1.0, dataset_size: int = 0,
                 sampling: str = "mws"):
        if min(alpha, beta, gamma) < 0 or dataset_size < 0:
            raise VaekitError(f"the beta-tc objective needs alpha, beta, gamma and dataset_size >= 0, got "
                              f"alpha={alpha}, beta={beta}, gamma={gamma}, dataset_size={dataset_size}")
        if sampling not in SAMPLINGS:
            raise VaekitError(f"the beta-tc objective's sampling must be one of {', '.join(SAMPLINGS)} (minibatch "
                              f"weighted or stratified sampling), got {sampling!r}")
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.dataset_size, self.sampling = int(dataset_size), sampling

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, c)
        if len(out.latents) != 1:
            raise VaekitError("the beta-tc objective needs a model with one stochastic layer; use --objective elbo "
                              "for a hierarchical model")
        layer = out.latents[0]
        t = elbo_terms(out, x)
        parts = {k: v.mean() for k, v in tc_decomposition(layer.q, layer.prior, layer.z, self.dataset_size,
                                                          self.sampling).items()}
        penalty = self.alpha * parts["mi"] + self.beta * parts["tc"] + self.gamma * parts["dwkl"]
        loss = t.recon.mean() + kl_weight * penalty
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), **parts}
        return LossOutput({"main": loss}, terms)
