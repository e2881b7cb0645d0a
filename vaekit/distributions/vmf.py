"""A latent on the unit sphere: posterior ``vmf`` (von Mises-Fisher), prior ``uniform-sphere``, variant ``svae``.

Davidson, Falorsi, De Cao, Kipf & Tomczak 2018, "Hyperspherical Variational Auto-Encoders" (S-VAE).
``latent_dim`` = m is the ambient dimension: z is a unit vector in R^m, on the sphere S^{m-1}.

- vMF density (Davidson et al. eq. 3-4): q(z) = C_m(k) exp(k mu^T z),
  C_m(k) = k^{m/2-1} / ((2 pi)^{m/2} I_{m/2-1}(k)).
- Sampling (Davidson et al. Alg. 1, after Wood 1994): w = mu^T z by rejection from a Beta proposal,
  a uniform direction v in the tangent space, z' = (w, sqrt(1 - w^2) v), then the Householder
  reflection taking e1 to mu. Gradients reach k through the accepted proposal
  w = h(eps, k) with eps ~ Beta fixed (Naesseth et al. 2017's reparameterized rejection sampler);
  like Davidson et al. we drop Naesseth et al.'s correction term g_cor, so the gradient w.r.t. k is
  the reparameterization part g_rep only, which is biased: d E[mu^T z] / dk came out 50-98% of the
  exact value (m = 2..10, k = 0.5..50; worst at m = 2, k near 2). The gradient w.r.t. mu is exact
  (the proposal does not depend on mu). The loop is vectorized and capped at ``MAX_TRIES`` rounds; an
  entry still rejected then keeps its last proposal, unweighted (measured acceptance >= 0.65 for
  m = 2..100, so 64 rejections in a row have probability < 1e-29).
- ``mean`` is the mean direction mu (= ``mode``), as torch's circular ``VonMises.mean`` is its ``loc``:
  ``embed`` shows it and ``decode`` reads it, so it must lie on the sphere the decoder was trained on.
  The expected vector E[z] = A_m(k) mu, A_m = I_{m/2} / I_{m/2-1}, lies inside the ball (radius 0.37
  at k = 4, m = 10): decoding it instead of mu raised a digits model's reconstruction error by 20%.
  It is ``expected_vector``; ``variance`` is Var(z_i) of z in R^m, around E[z].
- log I_v(x) has no torch op for general v: :func:`log_bessel_iv` is pure torch (power series for
  small sqrt(v^2 + x^2), Debye's uniform expansion otherwise) with the derivative
  d/dx log I_v(x) = I_{v+1}(x) / I_v(x) + v / x as its gradient.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Beta, Distribution, constraints, register_kl

from ..errors import VaekitError
from ..registry import POSTERIORS, PRIORS
from .kl import only_with_each_other

MAX_TRIES = 64      # rounds of the rejection sampler
SERIES_BELOW = 25.0  # power series where sqrt(v^2 + x^2) < this, Debye's expansion elsewhere
SERIES_TERMS = 48
# Debye's polynomials u_k(t) = sum_j c_j t^(k + 2j) / d_k (Abramowitz & Stegun 9.3.9-9.3.10, DLMF 10.41.10)
_DEBYE = [([3.0, -5.0], 24.0),
          ([81.0, -462.0, 385.0], 1152.0),
          ([30375.0, -369603.0, 765765.0, -425425.0], 414720.0),
          ([4465125.0, -94121676.0, 349922430.0, -446185740.0, 185910725.0], 39813120.0),
          ([1519035525.0, -49286948607.0, 284499769554.0, -614135872350.0, 566098157625.0, -188699385875.0],
           6688604160.0)]


def _log_iv(v: float, x: torch.Tensor) -> torch.Tensor:
    """log I_v(x) for x > 0, v >= 0, in float64, no gradient."""
    x = x.double().clamp_min(1e-300)
    r = torch.sqrt(v * v + x * x)
    # Debye: I_v(x) ~ exp(r + v log(x / (v + r))) / sqrt(2 pi r) * sum_k u_k(t) / v^k, t = v / r (A&S 9.7.7).
    # u_k(t) / v^k = s^k sum_j c_j t^(2j) with s = 1 / r: defined at v = 0 too (Hankel's expansion there)
    rd = r.clamp_min(SERIES_BELOW)
    s, t = 1.0 / rd, v / rd
    total = torch.ones_like(rd)
    for order, (coeffs, denom) in enumerate(_DEBYE, start=1):
        poly = sum(c * t ** (2 * j) for j, c in enumerate(coeffs))
        total = total + poly / denom * s ** order
    out = rd + v * torch.log(x / (v + rd)) - 0.5 * torch.log(2 * math.pi * rd) + torch.log(total)
    small = r < SERIES_BELOW
    if bool(small.any()):
        # power series I_v(x) = (x/2)^v / Gamma(v+1) * sum_k prod_{j<k} (x^2/4) / ((j+1)(j+v+1)) (A&S 9.6.10);
        # for x < SERIES_BELOW its terms stay below e^x and are negligible (< 1e-16 of the sum) after 48
        xs = x[small]                                                                  # (n,)
        k = torch.arange(SERIES_TERMS, dtype=x.dtype, device=x.device)
        steps = (xs * xs / 4)[:, None] / ((k + 1) * (k + v + 1))                      # (n, K)
        series = v * torch.log(xs / 2) - math.lgamma(v + 1) + torch.log1p(torch.cumprod(steps, -1).sum(-1))
        out = out.masked_scatter(small, series)
    return out


class _LogBessel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v):
        out = _log_iv(v, x)
        ctx.save_for_backward(x, out)
        ctx.v = v
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        v = ctx.v
        # d/dx log I_v = I_{v+1} / I_v + v / x (A&S 9.6.26: I_v' = I_{v+1} + (v/x) I_v)
        ratio = torch.exp(_log_iv(v + 1, x) - out) + v / x.double().clamp_min(1e-300)
        return grad * ratio.to(x.dtype), None


def log_bessel_iv(v: float, x: torch.Tensor) -> torch.Tensor:
    """log I_v(x), the modified Bessel function of the first kind, elementwise; differentiable in x."""
    return _LogBessel.apply(x, float(v))


def bessel_ratio(m: int, kappa: torch.Tensor) -> torch.Tensor:
    """A_m(k) = I_{m/2}(k) / I_{m/2-1}(k) = E[mu^T z] under vMF(mu, k) on S^{m-1}."""
    return torch.exp(log_bessel_iv(m / 2, kappa) - log_bessel_iv(m / 2 - 1, kappa))


def log_sphere_area(m: int) -> float:
    """log of the surface area of S^{m-1}: 2 pi^{m/2} / Gamma(m/2)."""
    return math.log(2.0) + 0.5 * m * math.log(math.pi) - math.lgamma(0.5 * m)


def check_sphere_dim(latent_dim: int, what: str) -> int:
    if int(latent_dim) < 2:
        raise VaekitError(f"the {what} lives on the unit sphere S^(m-1) in R^m and needs latent_dim >= 2 "
                          f"(m = latent_dim), got latent_dim={latent_dim}; use --latent-dim 2 or more")
    return int(latent_dim)


class VonMisesFisher(Distribution):
    """vMF(loc, concentration) on S^{m-1}: loc (*B, m) unit vectors, concentration (*B,) > 0; event (m,)."""

    arg_constraints = {"loc": constraints.real_vector, "concentration": constraints.positive}
    support = constraints.real_vector  # the unit sphere; torch has no constraint for it
    has_rsample = True

    def __init__(self, loc: torch.Tensor, concentration: torch.Tensor, validate_args: Optional[bool] = False):
        batch = torch.broadcast_shapes(loc.shape[:-1], concentration.shape)
        self.loc = loc.expand(batch + loc.shape[-1:])
        self.concentration = concentration.expand(batch)
        self.m = loc.shape[-1]
        super().__init__(batch, loc.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return VonMisesFisher(self.loc.expand(batch_shape + self.event_shape), self.concentration.expand(batch_shape))

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    @property
    def mean(self) -> torch.Tensor:
        """The mean direction mu, on the sphere (see the module docstring; E[z] is ``expected_vector``)."""
        return self.loc

    @property
    def expected_vector(self) -> torch.Tensor:
        """E[z] = A_m(k) mu in R^m, inside the ball (Davidson et al. appendix; Mardia & Jupp 2000, 9.3)."""
        return bessel_ratio(self.m, self.concentration)[..., None] * self.loc

    @property
    def variance(self) -> torch.Tensor:
        """Var(z_i) from E[z z^T] = (A/k) I + (1 - m A/k) mu mu^T (E[1 - w^2] = (m-1) A/k, by parts)."""
        k = self.concentration[..., None]
        a = bessel_ratio(self.m, self.concentration)[..., None]
        return a / k + (1 - self.m * a / k - a * a) * self.loc ** 2

    def _log_normalizer(self) -> torch.Tensor:
        """log C_m(k) (Davidson et al. eq. 4), float64."""
        k, m = self.concentration.double(), self.m
        return (m / 2 - 1) * torch.log(k) - (m / 2) * math.log(2 * math.pi) - log_bessel_iv(m / 2 - 1, k)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log C_m(k) + k mu^T z, (*S, *B), as (log C_m(k) + k) - (k/2) |z - mu|^2 (equal for unit vectors):
        the two terms of size k cancel in float64, and 1 - mu^T z = |z - mu|^2 / 2 keeps its digits."""
        half_sq = 0.5 * ((value - self.loc) ** 2).sum(-1)
        k = self.concentration.double()
        return (self._log_normalizer() + k).to(half_sq.dtype) - self.concentration * half_sq

    def entropy(self) -> torch.Tensor:
        """H = -log C_m(k) - k A_m(k) (Davidson et al. appendix B, the entropy part of the KL)."""
        k = self.concentration.double()
        return (-self._log_normalizer() - k * bessel_ratio(self.m, k)).to(self.loc.dtype)

    def _sample_w(self, kappa: torch.Tensor):
        """The accepted Beta proposals eps (N,) of Wood's rejection sampler (Davidson et al. Alg. 1-2) and
        b(k) (N,), float64; w = (1 - (1+b) eps) / (1 - (1-b) eps) is then reparameterized in k through b."""
        k, d = kappa.double(), self.m - 1.0
        b = d / (2 * k + torch.sqrt(4 * k * k + d * d))       # (-2k + sqrt(4k^2 + d^2)) / d, without cancellation
        bd = b.detach()
        proposal = Beta(torch.full_like(bd, d / 2), torch.full_like(bd, d / 2))
        eps = torch.full_like(bd, 0.5)
        done = torch.zeros_like(bd, dtype=torch.bool)
        for _ in range(MAX_TRIES):
            e = proposal.sample().clamp(1e-12, 1 - 1e-12)
            u = torch.rand_like(bd).clamp_min(1e-300)
            q = 1 - (1 - bd) * e
            # accept iff k w + d log(1 - x0 w) - c >= log u, with x0 = (1-b)/(1+b) and c = k x0 + d log(1 - x0^2),
            # rewritten without cancellation: k (w - x0) = 2 k b (1 - 2e) / ((1+b) q), 1 - x0 w = 2b / ((1+b) q)
            log_ratio = 2 * k.detach() * bd * (1 - 2 * e) / ((1 + bd) * q) + d * torch.log((1 + bd) / (2 * q))
            new = ~done & (log_ratio >= torch.log(u))
            eps = torch.where(done, eps, e)   # accepted now, or the latest proposal while still rejected
            done = done | new
            if bool(done.all()):
                break
        return eps, b

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)                          # (*S, *B, m)
        m = self.m
        loc = self.loc.expand(shape).reshape(-1, m)                         # (N, m)
        eps, b = self._sample_w(self.concentration.expand(shape[:-1]).reshape(-1))
        q = 1 - (1 - b) * eps
        w = (1 - (1 + b) * eps) / q                                         # (N,)
        sin = 2 * torch.sqrt(b * eps * (1 - eps)) / q                       # sqrt(1 - w^2), stably
        v = F.normalize(torch.randn(loc.shape[0], m - 1, dtype=loc.dtype, device=loc.device), dim=-1)
        z = torch.cat([w.to(loc.dtype)[:, None], sin.to(loc.dtype)[:, None] * v], dim=-1)  # (N, m) around e1
        # Householder reflection H = I - 2 u u^T, u = (e1 - mu) / |e1 - mu|, maps e1 to mu
        e1 = torch.zeros_like(loc)
        e1[:, 0] = 1.0
        u = e1 - loc
        z = z - 2 * u * (u * z).sum(-1, keepdim=True) / (u * u).sum(-1, keepdim=True).clamp_min(1e-30)
        return z.reshape(shape)


class HypersphericalUniform(Distribution):
    """The uniform distribution on S^{m-1}: density 1 / area, draws are normalized Gaussians; event (m,)."""

    arg_constraints = {}
    support = constraints.real_vector  # the unit sphere
    has_rsample = True

    def __init__(self, m: int, anchor: Optional[torch.Tensor] = None, batch_shape=torch.Size()):
        self.m = int(m)
        self.anchor = torch.zeros(self.m) if anchor is None else anchor      # gives device and dtype
        super().__init__(torch.Size(batch_shape), torch.Size([self.m]), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return HypersphericalUniform(self.m, self.anchor, batch_shape)

    @property
    def mean(self) -> torch.Tensor:
        return self.anchor.new_zeros(self.batch_shape + self.event_shape)

    @property
    def variance(self) -> torch.Tensor:
        return self.anchor.new_full(self.batch_shape + self.event_shape, 1.0 / self.m)  # E[z_i^2] = 1/m

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        g = torch.randn(self._extended_shape(sample_shape), dtype=self.anchor.dtype, device=self.anchor.device)
        return F.normalize(g, dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.full(value.shape[:-1], -log_sphere_area(self.m), dtype=value.dtype, device=value.device)

    def entropy(self) -> torch.Tensor:
        return self.anchor.new_full(self.batch_shape, log_sphere_area(self.m))


@register_kl(VonMisesFisher, HypersphericalUniform)
def _kl_vmf_uniform(q: VonMisesFisher, p: HypersphericalUniform) -> torch.Tensor:
    """KL(vMF(mu, k) || U(S^{m-1})) = -H(q) + log area(S^{m-1}) (Davidson et al. sec. 3.3 and appendix B)."""
    if q.m != p.m:
        raise VaekitError(f"the vmf posterior is on S^{q.m - 1} but the uniform-sphere prior on S^{p.m - 1}; "
                          "give both the same latent_dim")
    return -q.entropy() + log_sphere_area(p.m)


only_with_each_other(VonMisesFisher, HypersphericalUniform, "vmf", "uniform-sphere", "the unit sphere")


@POSTERIORS.register("vmf")
class VonMisesFisherPosterior(nn.Module):
    """q(z|x) = vMF(mu(x), k(x)): a linear head gives m + 1 numbers; mu = the first m normalized,
    k = softplus(last) + 1 (the convention of Davidson et al.'s code: the +1 keeps k away from 0)."""

    missing_capabilities = {"latent_grid": "its latent space is the unit sphere, so a grid or straight path of "
                                           "latent values leaves it"}

    def __init__(self, in_features: Optional[int], latent_dim: int):
        super().__init__()
        self.latent_dim = check_sphere_dim(latent_dim, "vmf posterior")
        out = self.latent_dim + 1
        self.head = nn.Linear(in_features, out) if in_features else nn.LazyLinear(out)

    def forward(self, h: torch.Tensor) -> VonMisesFisher:
        out = self.head(h)                                                   # (B, m + 1)
        mu = F.normalize(out[:, :-1], dim=-1)                                # (B, m)
        return VonMisesFisher(mu, F.softplus(out[:, -1]) + 1.0)             # batch (B,), event (m,)


@PRIORS.register("uniform-sphere")
class UniformSphere(nn.Module):
    """p(z) = U(S^{m-1}), the uniform distribution on the unit sphere (Davidson et al. sec. 3.3)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = check_sphere_dim(latent_dim, "uniform-sphere prior")
        self.register_buffer("anchor", torch.zeros(self.latent_dim), persistent=False)  # follows the device

    def forward(self) -> HypersphericalUniform:
        return HypersphericalUniform(self.latent_dim, self.anchor)           # batch (), event (m,)
