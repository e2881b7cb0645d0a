"""Maximum mean discrepancy between the aggregate posterior q(z) and the prior p(z): WAE-MMD and InfoVAE."""
from __future__ import annotations

from typing import Optional

import torch

from ..contract.bounds import elbo_terms
from ..errors import VaekitError
from ..registry import OBJECTIVES
from .base import LossOutput, Objective, layer_terms

KERNELS = ("rbf", "imq")


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, kernel: str, scale: float) -> torch.Tensor:
    """k(a_i, b_j) for a (N, D) and b (M, D), (N, M), with bandwidth ``scale`` C.

    - ``"rbf"``: exp(-||a - b||^2 / C);
    - ``"imq"`` (inverse multiquadratic): C / (C + ||a - b||^2),
    Tolstikhin et al. 2018, "Wasserstein Auto-Encoders", sec. 4, with C = 2 d sigma^2.
    """
    d2 = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)              # (N, M)
    if kernel == "rbf":
        return torch.exp(-d2 / scale)
    if kernel == "imq":
        return scale / (scale + d2)
    raise VaekitError(f"unknown MMD kernel {kernel!r}; choose one of: {', '.join(KERNELS)}")


def mmd(x: torch.Tensor, y: torch.Tensor, kernel: str = "imq", scale: Optional[float] = None) -> torch.Tensor:
    """The unbiased estimate of MMD^2 between samples x (N, D) and y (M, D), N, M >= 2.

    Gretton et al. 2012, "A Kernel Two-Sample Test", eq. 3 (as in WAE-MMD, Tolstikhin et al. 2018,
    Algorithm 2): 1/(N(N-1)) sum_{i != j} k(x_i, x_j) + 1/(M(M-1)) sum_{i != j} k(y_i, y_j)
    - 2/(NM) sum_{i, j} k(x_i, y_j). It may be slightly negative. ``scale`` defaults to 2 D
    (C = 2 d sigma^2 with sigma^2 = 1, the prior's variance).
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise VaekitError(f"the MMD estimate needs at least 2 samples on each side, got {n} and {m}")
    scale = float(scale) if scale else 2.0 * x.shape[1]
    kxx, kyy, kxy = (kernel_matrix(x, x, kernel, scale), kernel_matrix(y, y, kernel, scale),
                     kernel_matrix(x, y, kernel, scale))
    xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return xx + yy - 2.0 * kxy.mean()


def prior_samples(prior, like: torch.Tensor) -> torch.Tensor:
    """Samples of p(z) shaped like the posterior samples ``like`` (B, D): one per row."""
    if len(prior.batch_shape) == 0:
        draw = prior.rsample if prior.has_rsample else prior.sample
        return draw((like.shape[0],))
    return prior.rsample() if prior.has_rsample else prior.sample()  # a per-example prior (a ladder's)


@OBJECTIVES.register("mmd")
class MMD(Objective):
    """loss = recon + (1 - alpha) w KL + (alpha + lam - 1) MMD^2(q(z), p(z)).

    The InfoVAE family of Zhao, Song & Ermon 2019, "InfoVAE: Balancing Learning and Inference in
    Variational Autoencoders", eq. 7 with the MMD divergence; alpha = 1 drops the KL and gives the
    Wasserstein auto-encoder WAE-MMD of Tolstikhin et al. 2018, loss = recon + lam MMD^2 (their
    MNIST lambda is 10). The MMD compares the batch's posterior samples with as many prior
    samples, per stochastic layer (:func:`mmd`, unbiased). ``w`` is the trainer's KL warm-up
    factor. ``kernel`` is ``"imq"`` or ``"rbf"``; ``scale`` the kernel bandwidth C (0: 2 x latent
    dimensions, the WAE paper's C = 2 d sigma^2 with sigma^2 = 1). The reported ``elbo`` term is
    the true bound from :func:`~vaekit.contract.bounds.elbo_terms`, whatever alpha and lam.
    """

    def __init__(self, kernel: str = "imq", scale: float = 0.0, lam: float = 10.0, alpha: float = 1.0):
        if kernel not in KERNELS:
            raise VaekitError(f"the mmd objective's kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        if scale < 0 or lam < 0 or alpha > 1 or alpha + lam - 1 < 0:
            raise VaekitError(f"the mmd objective needs scale >= 0, lam >= 0, alpha <= 1 and alpha + lam >= 1 "
                              f"(non-negative weights), got scale={scale}, lam={lam}, alpha={alpha}")
        self.kernel, self.scale, self.lam, self.alpha = kernel, float(scale), float(lam), float(alpha)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, c)
        t = elbo_terms(out, x)
        penalty = sum(mmd(l.z.reshape(l.z.shape[0], -1), prior_samples(l.prior, l.z).reshape(l.z.shape[0], -1),
                          self.kernel, self.scale) for l in out.latents)
        loss = t.recon.mean() + (1 - self.alpha) * kl_weight * t.kl.mean() + (self.alpha + self.lam - 1) * penalty
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), "mmd": penalty,
                 **layer_terms(t.kls)}
        return LossOutput({"main": loss}, terms)
