"""The Poincaré ball and the wrapped normal on it: posterior ``wrapped-normal``, prior ``wrapped-normal-origin``.

Mathieu, Le Lan, Maddison, Tomioka & Teh 2019, "Continuous Hierarchical Representations with
Poincaré Variational Auto-Encoders" (P-VAE); the wrapped normal is Nagano et al. 2019, "A Wrapped
Normal Distribution on Hyperbolic Space for Gradient-Based Learning"; the ball's gyrovector maths
is Ganea, Bécigneul & Hofmann 2018, "Hyperbolic Neural Networks", sec. 2.

The ball B_c = {x : c|x|^2 < 1} (curvature -c, c > 0) carries the metric lambda_x^2 I with the
conformal factor lambda_x = 2 / (1 - c|x|^2), so its Riemannian volume is dM(z) = lambda_z^d dz.

Base measure (a vaekit choice): ``WrappedNormal.log_prob`` is the density with respect to Lebesgue
measure dz on the ball's coordinates, i.e. the paper's Riemannian density (``log_prob_riemannian``)
plus d log lambda_z. The ELBO and importance weights only use ratios q/p, so they are the same
under either measure, and a wrapped-normal posterior may then also be paired with a Euclidean prior.

There is no closed-form KL: ``kl_term`` falls back to log q(z) - log p(z) at the sample (no
``register_kl`` here, and ``WrappedNormal`` does not subclass ``Normal``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Normal, constraints

from ..errors import VaekitError
from ..registry import POSTERIORS, PRIORS

MIN_NORM = 1e-15
BALL_EPS = {torch.float32: 4e-3, torch.float64: 1e-5}  # points kept within radius (1 - eps) / sqrt(c)


def _norm(x: torch.Tensor) -> torch.Tensor:
    return x.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)  # (..., 1)


def _artanh(x: torch.Tensor) -> torch.Tensor:
    return torch.atanh(x.clamp(-1 + 1e-7, 1 - 1e-7))


def project(x: torch.Tensor, c: float) -> torch.Tensor:
    """Pull x back inside the ball: rescale points beyond radius (1 - eps) / sqrt(c) onto that radius."""
    limit = (1 - BALL_EPS.get(x.dtype, 4e-3)) / math.sqrt(c)
    n = _norm(x)
    return torch.where(n > limit, x / n * limit, x)


def conformal_factor(x: torch.Tensor, c: float) -> torch.Tensor:
    """lambda_x^c = 2 / (1 - c|x|^2) (Ganea et al. 2018, sec. 2.1); (..., 1)."""
    return 2 / (1 - c * x.pow(2).sum(-1, keepdim=True)).clamp_min(MIN_NORM)


def mobius_add(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """x (+)_c y = ((1 + 2c<x,y> + c|y|^2) x + (1 - c|x|^2) y) / (1 + 2c<x,y> + c^2 |x|^2 |y|^2)

    (Ganea et al. 2018, eq. 2; Mathieu et al. 2019, appendix A).
    """
    xy = (x * y).sum(-1, keepdim=True)
    x2, y2 = x.pow(2).sum(-1, keepdim=True), y.pow(2).sum(-1, keepdim=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return num / (1 + 2 * c * xy + c ** 2 * x2 * y2).clamp_min(MIN_NORM)


def expmap(x: torch.Tensor, u: torch.Tensor, c: float) -> torch.Tensor:
    """exp_x^c(u) = x (+)_c (tanh(sqrt(c) lambda_x |u| / 2) u / (sqrt(c) |u|)) (Ganea et al. 2018, lemma 2)."""
    sc, n = math.sqrt(c), _norm(u)
    return project(mobius_add(x, torch.tanh(sc * conformal_factor(x, c) * n / 2) * u / (sc * n), c), c)


def logmap(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """log_x^c(y) = 2 / (sqrt(c) lambda_x) artanh(sqrt(c)|m|) m / |m|, m = -x (+)_c y (Ganea et al. 2018, lemma 2)."""
    sc, m = math.sqrt(c), mobius_add(-x, y, c)
    n = _norm(m)
    return 2 / (sc * conformal_factor(x, c)) * _artanh(sc * n) * m / n


def expmap0(u: torch.Tensor, c: float) -> torch.Tensor:
    """exp_0^c(u) = tanh(sqrt(c)|u|) u / (sqrt(c)|u|) (Ganea et al. 2018, eq. 13)."""
    sc, n = math.sqrt(c), _norm(u)
    return project(torch.tanh(sc * n) * u / (sc * n), c)


def logmap0(y: torch.Tensor, c: float) -> torch.Tensor:
    """log_0^c(y) = artanh(sqrt(c)|y|) y / (sqrt(c)|y|) (Ganea et al. 2018, eq. 13)."""
    sc, n = math.sqrt(c), _norm(y)
    return _artanh(sc * n) * y / (sc * n)


def distance(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """d_c(x, y) = (2 / sqrt(c)) artanh(sqrt(c) |-x (+)_c y|) (Ganea et al. 2018, eq. 5); (...,)."""
    sc = math.sqrt(c)
    return 2 / sc * _artanh(sc * mobius_add(-x, y, c).norm(dim=-1))


def _log_sinhc(r: torch.Tensor) -> torch.Tensor:
    """log(sinh(r) / r) for r >= 0, stable at 0 (series r^2/6) and for large r (no overflow)."""
    small = r < 1e-3
    rs = torch.where(small, torch.ones_like(r), r)
    big = rs + torch.log(-torch.expm1(-2 * rs)) - math.log(2) - torch.log(rs)
    return torch.where(small, r.pow(2) / 6, big)


def check_curvature(curvature: float, who: str) -> float:
    if not float(curvature) > 0:
        raise VaekitError(f"the {who} needs curvature > 0 (the ball has curvature -c), got curvature={curvature}")
    return float(curvature)


class WrappedNormal(Distribution):
    """The wrapped normal N^W(loc, diag(scale^2)) on the Poincaré ball of curvature -c; batch = loc's leading
    dims, event (d,).

    Sampling (Mathieu et al. 2019, sec. 3 and appendix B.3; Nagano et al. 2019, alg. 1): v ~ N(0, scale^2)
    in orthonormal coordinates of the tangent space at the origin (the Euclidean vector v / lambda_0 there),
    parallel transport to loc (multiply by lambda_0 / lambda_loc, Ganea et al. 2018, eq. 15), then exp_loc.
    So ``scale`` is a Riemannian (geodesic) length: d_c(loc, z) = |v|, as in the paper and its code.

    ``mean`` is ``loc``: the Fréchet mean (and mode), by the distribution's geodesic symmetry about loc;
    it is not the Euclidean average of the coordinates. ``variance`` is a Monte Carlo estimate of the
    coordinates' variance (no closed form), as the flow posteriors do.
    """

    arg_constraints = {}
    support = constraints.real_vector  # the open ball; samples are projected inside it
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, curvature: float = 1.0):
        self.c = check_curvature(curvature, "wrapped normal")
        self.loc, self.scale = torch.broadcast_tensors(loc, scale)
        super().__init__(self.loc.shape[:-1], self.loc.shape[-1:], validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        return self.rsample((64,)).var(0)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape) + self.event_shape
        return WrappedNormal(self.loc.expand(shape), self.scale.expand(shape), self.c)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)                               # (*S, *B, d)
        v = self.scale * torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        lam0 = 2.0                                                               # lambda_0^c for every c
        u = (v / lam0) * lam0 / conformal_factor(self.loc, self.c)               # transported to loc
        return expmap(self.loc, u, self.c)

    def log_prob_riemannian(self, z: torch.Tensor) -> torch.Tensor:
        """The paper's density w.r.t. the Riemannian volume (Mathieu et al. 2019, appendix B.3, eq. for N^W):

        log N^W(z | loc, scale) = log N(lambda_loc log_loc(z) | 0, scale^2)
                                  - (d - 1) log( sinh(sqrt(c) r) / (sqrt(c) r) ),  r = d_c(loc, z).

        lambda_loc log_loc(z) is log_loc(z) transported back to the origin (times lambda_loc / lambda_0) in
        orthonormal coordinates there (times lambda_0); its length is r. The second term is the log-Jacobian
        of exp_loc in geodesic polar coordinates (volume element (sinh(sqrt(c) r) / sqrt(c))^(d-1) dr dOmega).
        """
        v = logmap(self.loc, z, self.c) * conformal_factor(self.loc, self.c)   # (*S, *B, d)
        r = v.norm(dim=-1)                                                       # = d_c(loc, z)
        d = self.event_shape[0]
        normal = Normal(torch.zeros_like(self.scale), self.scale, validate_args=False).log_prob(v).sum(-1)
        return normal - (d - 1) * _log_sinhc(math.sqrt(self.c) * r)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Density w.r.t. Lebesgue measure on the ball's coordinates: Riemannian density + d log lambda_z; (*S, *B)."""
        d = self.event_shape[0]
        return self.log_prob_riemannian(z) + d * conformal_factor(z, self.c).squeeze(-1).log()

    def entropy(self):
        raise NotImplementedError("the wrapped normal has no closed-form entropy")


@POSTERIORS.register("wrapped-normal")
class WrappedNormalPosterior(nn.Module):
    """q(z|x) = N^W(exp_0(W h), softplus(V h) + 1e-5) on the Poincaré ball (Mathieu et al. 2019, sec. 4:
    the encoder's Euclidean output is mapped onto the ball by exp_0, as in the paper's code)."""

    missing_capabilities = {"latent_grid": "its latent space is the Poincaré ball, and a Euclidean grid of latent "
                                           "values reaches outside it"}

    def __init__(self, in_features: Optional[int], latent_dim: int, curvature: float = 1.0):
        super().__init__()
        self.latent_dim, self.curvature = latent_dim, check_curvature(curvature, "wrapped-normal posterior")
        self.head = nn.Linear(in_features, 2 * latent_dim) if in_features else nn.LazyLinear(2 * latent_dim)

    def forward(self, h: torch.Tensor) -> WrappedNormal:
        u, s = self.head(h).chunk(2, dim=-1)                                     # (B, D) each
        return WrappedNormal(expmap0(u, self.curvature), F.softplus(s) + 1e-5, self.curvature)  # batch (B,)


@PRIORS.register("wrapped-normal-origin")
class WrappedNormalOrigin(nn.Module):
    """p(z) = N^W(0, I) on the Poincaré ball (Mathieu et al. 2019, sec. 5: prior scale 1 at the origin).

    ``bind(model)`` (called by the VAE) refuses a posterior that does not live on the same ball.
    """

    def __init__(self, latent_dim: int, curvature: float = 1.0):
        super().__init__()
        self.latent_dim, self.curvature = latent_dim, check_curvature(curvature, "wrapped-normal-origin prior")
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("scale", torch.ones(latent_dim), persistent=False)

    def bind(self, model) -> None:
        post = getattr(model, "posterior", None)
        if not isinstance(post, WrappedNormalPosterior):
            raise VaekitError("the wrapped-normal-origin prior lives in the Poincaré ball; pair it with "
                              f"model.posterior.name=wrapped-normal, not {type(post).__name__}")
        if post.curvature != self.curvature:
            raise VaekitError(f"the wrapped-normal posterior has curvature={post.curvature} but the prior "
                              f"curvature={self.curvature}: set model.prior.args.curvature and "
                              "model.posterior.args.curvature to the same value")

    def forward(self) -> WrappedNormal:
        return WrappedNormal(self.loc, self.scale, self.curvature)               # batch (), event (D,)
