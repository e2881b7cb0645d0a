"""A full-covariance Gaussian mixture fitted to the codes by expectation-maximization.

Ghosh et al. 2020 (sec. 4) fit a 10-component GMM to the codes of an RAE ("ex-post density
estimation"); pythae's GaussianMixtureSampler does the same with scikit-learn. Here EM is
written in torch (Bishop 2006, "Pattern Recognition and Machine Learning", sec. 9.2.2,
eqs. 9.23-9.27), in float64, with scikit-learn's conventions: ``reg`` is added to every
covariance's diagonal, and EM stops after ``iterations`` steps or when the mean log-likelihood
per code changes by less than ``tol``.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from ..errors import VaekitError
from ..registry import SAMPLERS
from .base import Sampler, check_positive

INITS = ("kmeans++", "random")
LLOYD_STEPS = 10  # k-means steps after the k-means++ seeding, before EM


@SAMPLERS.register("gmm")
class GaussianMixtureSampler(Sampler):
    """p(z) = sum_k w_k N(z | mu_k, Sigma_k), K = ``components`` (10, Ghosh et al. 2020 and pythae).

    ``init``: ``"kmeans++"`` (k-means++ seeding, Arthur & Vassilvitskii 2007, then a few k-means
    steps; the hard assignments are the first responsibilities) or ``"random"`` (random
    responsibilities, as scikit-learn's init_params="random"); both drawn from the fit's seed.
    """

    width_args = ("components",)

    def __init__(self, dim: int, components: int = 10, iterations: int = 100, tol: float = 1e-3,
                 reg: float = 1e-6, init: str = "kmeans++"):
        super().__init__(dim)
        check_positive("gmm", components=components, iterations=iterations)
        if tol < 0 or reg < 0:
            raise VaekitError(f"the gmm sampler needs tol >= 0 and reg >= 0, got tol={tol}, reg={reg}")
        if init not in INITS:
            raise VaekitError(f"the gmm sampler's init must be one of {', '.join(INITS)}, got {init!r}")
        self.components, self.iterations, self.tol, self.reg, self.init = (
            int(components), int(iterations), float(tol), float(reg), init)
        k = self.components
        self.register_buffer("weights", torch.full((k,), 1.0 / k, dtype=torch.float64))          # (K,)
        self.register_buffer("means", torch.zeros(k, dim, dtype=torch.float64))                  # (K, D)
        self.register_buffer("scale_tril", torch.eye(dim, dtype=torch.float64).repeat(k, 1, 1))  # (K, D, D)
        self.steps, self.converged = 0, False

    # -- EM ----------------------------------------------------------------------------------
    def fit(self, codes: torch.Tensor, seed: int = 0) -> "GaussianMixtureSampler":
        x = self.check_codes(codes, max(2, self.components), "lower its components (--set components=N)")  # (N, D)
        gen = torch.Generator().manual_seed(int(seed))
        resp = self._initial_resp(x, gen)                                                # (N, K)
        self._m_step(x, resp)
        previous = -math.inf
        self.steps, self.converged = 0, False
        for _ in range(self.iterations):
            log_joint = self._log_joint(x)                                               # (N, K)
            log_px = torch.logsumexp(log_joint, 1)                                       # (N,)
            self._m_step(x, (log_joint - log_px[:, None]).exp())                         # E then M
            self.steps += 1
            mean_ll = float(log_px.mean())
            if abs(mean_ll - previous) < self.tol:
                self.converged = True
                break
            previous = mean_ll
        return self

    def _initial_resp(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, k = x.shape[0], self.components
        if self.init == "random":
            resp = torch.rand(n, k, generator=gen, dtype=x.dtype)
            return resp / resp.sum(1, keepdim=True)
        centres = x[torch.randint(n, (1,), generator=gen)]                               # (1, D)
        for _ in range(1, k):  # k-means++: next centre with probability proportional to D(x)^2
            d2 = torch.cdist(x, centres).pow(2).min(1).values                            # (N,)
            pick = torch.multinomial(d2 / d2.sum(), 1, generator=gen) if d2.sum() > 0 else \
                torch.randint(n, (1,), generator=gen)
            centres = torch.cat([centres, x[pick]])
        for _ in range(LLOYD_STEPS):
            label = torch.cdist(x, centres).argmin(1)                                    # (N,)
            for j in range(k):
                if (label == j).any():
                    centres[j] = x[label == j].mean(0)
        return torch.nn.functional.one_hot(torch.cdist(x, centres).argmin(1), k).to(x.dtype)

    def _m_step(self, x: torch.Tensor, resp: torch.Tensor) -> None:
        """Bishop eqs. 9.24-9.27: N_k, mu_k, Sigma_k (+ reg I), w_k = N_k / N, from responsibilities (N, K)."""
        nk = resp.sum(0) + 10 * torch.finfo(x.dtype).eps                                 # (K,)
        means = resp.t() @ x / nk[:, None]                                               # (K, D)
        diff = x[None] - means[:, None]                                                  # (K, N, D)
        cov = torch.einsum("nk,knd,kne->kde", resp, diff, diff) / nk[:, None, None]      # (K, D, D)
        cov = cov + self.reg * torch.eye(self.dim, dtype=x.dtype)
        tril, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            raise VaekitError(f"a gmm component's covariance is not positive definite (reg={self.reg}); "
                              "raise reg (--set reg=1e-4) or lower components")
        self.weights.copy_(nk / x.shape[0])
        self.means.copy_(means)
        self.scale_tril.copy_(tril)

    def _log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x_n | mu_k, L_k L_k^T), (N, K), through triangular solves."""
        diff = (x[None] - self.means[:, None]).transpose(1, 2)                            # (K, D, N)
        y = torch.linalg.solve_triangular(self.scale_tril, diff, upper=False)             # (K, D, N)
        log_det = self.scale_tril.diagonal(dim1=1, dim2=2).log().sum(1)                  # (K,) = log |L_k|
        log_n = -0.5 * (self.dim * math.log(2 * math.pi) + y.pow(2).sum(1)) - log_det[:, None]  # (K, N)
        return (log_n + self.weights.log()[:, None]).t()

    # -- the fitted density ------------------------------------------------------------------
    def distribution(self) -> MixtureSameFamily:
        return MixtureSameFamily(Categorical(probs=self.weights, validate_args=False),
                                 MultivariateNormal(self.means, scale_tril=self.scale_tril, validate_args=False),
                                 validate_args=False)

    def sample(self, n: int) -> torch.Tensor:
        return self.distribution().sample((int(n),)).float()

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.distribution().log_prob(torch.as_tensor(z).double()).float()
