"""Normalizing flows on the diagonal Gaussian posterior: ``planar``, ``radial`` and ``iaf``.

q_K(z_K | x) is the density of z_K = f_K o ... o f_1(z_0), z_0 ~ q_0 = N(mu(x), diag sigma(x)^2):

    log q_K(z_K) = log q_0(z_0) - sum_k log |det df_k / dz_{k-1}|        (Rezende & Mohamed 2015, eq. 7)

Planar and radial flows have no closed-form inverse, so :class:`FlowPosterior` remembers the
log-density of every sample it drew and answers ``log_prob`` for those samples only (which is
all vaekit asks: ``elbo_terms``, ``kl_term`` and ``contract.bounds`` evaluate q at the z the
model drew); any other point raises a clear error.

Where the flow's parameters come from, as in the papers:
- ``planar`` / ``radial`` (Rezende & Mohamed 2015, sec. 4.1 and 6): amortised, every flow
  parameter is a linear function of the encoder's features h, per example.
- ``iaf`` (Kingma et al. 2016, sec. 4 and appendix): the autoregressive networks' weights are
  global; the encoder gives each example a context vector (a linear map of h) that every step
  receives as an extra input.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, Normal, constraints

from ..errors import VaekitError
from ..registry import POSTERIORS

Flow = Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]  # z0 (..., B, D) -> (zK, sum log|det J|)


class FlowPosterior(Distribution):
    """q_K: the push-forward of a diagonal Gaussian ``base`` (batch (B,), event (D,)) through ``flow``.

    ``rsample`` gives z_K and records log q_K(z_K); ``log_prob`` returns that record for a
    sample this distribution (or an ``expand`` of it) drew, and raises :class:`VaekitError`
    for any other point, since planar and radial flows cannot be inverted in closed form.
    ``mean`` is the flow applied to the base mean, f(E[z_0]), an approximation of E[z_K]
    (exact only for an affine flow); ``variance`` is a Monte Carlo estimate from 64 draws.
    """

    arg_constraints: Dict[str, constraints.Constraint] = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, base: Distribution, flow: Flow, cache: Optional[list] = None):
        self.base, self.flow = base, flow
        self._cache = [] if cache is None else cache  # [(z_K, log q_K(z_K))], shared with expands
        super().__init__(base.batch_shape, base.event_shape, validate_args=False)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        z0 = self.base.rsample(sample_shape)                          # (*S, *batch, D)
        zk, log_det = self.flow(z0)                                   # (*S, *batch, D), (*S, *batch)
        log_q = self.base.log_prob(z0) - log_det
        del self._cache[:-7]                                          # keep the 8 latest draws
        self._cache.append((zk, log_q))
        return zk

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        for z, log_q in reversed(self._cache):
            if value is z or (value.shape == z.shape and value.data_ptr() == z.data_ptr()
                              and value.stride() == z.stride()):
                return log_q
        raise VaekitError("a flow posterior (planar, radial, iaf) gives log q(z|x) only at the samples it drew "
                          "(rsample); its flows have no closed-form inverse to evaluate other points")

    def expand(self, batch_shape, _instance=None) -> "FlowPosterior":
        """The same q at a broadcast batch (``forward_many``'s (n, B)), sharing the samples' record."""
        return FlowPosterior(self.base.expand(torch.Size(batch_shape)), self.flow, self._cache)

    @property
    def mean(self) -> torch.Tensor:
        return self.flow(self.base.mean)[0]

    @property
    def variance(self) -> torch.Tensor:
        return self.sample((64,)).var(0)

    def entropy(self):
        raise NotImplementedError


def _base(mu: torch.Tensor, logvar: torch.Tensor) -> Independent:
    """q_0 = N(mu, diag exp(logvar)), log-variance clamped like the ``gaussian`` posterior."""
    return Independent(Normal(mu, torch.exp(0.5 * logvar.clamp(-30.0, 20.0)), validate_args=False), 1)


def _linear(in_features: Optional[int], out: int) -> nn.Module:
    return nn.Linear(in_features, out) if in_features else nn.LazyLinear(out)


# -- planar ---------------------------------------------------------------------------------
def planar_u_hat(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """u-hat = u + (m(w.u) - w.u) w / |w|^2, m(a) = -1 + softplus(a), so w.u-hat >= -1 and the
    planar flow is invertible (Rezende & Mohamed 2015, appendix A.1). Shapes (..., D)."""
    wu = (w * u).sum(-1, keepdim=True)
    return u + (-1.0 + F.softplus(wu) - wu) * w / (w * w).sum(-1, keepdim=True).clamp_min(1e-12)


def planar_step(z: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """f(z) = z + u h(w.z + b), h = tanh; log|det J| = log|1 + u.psi(z)|, psi = h'(w.z + b) w
    (Rezende & Mohamed 2015, eqs. 10-12). z (..., B, D); u, w (B, D) with u already u-hat; b (B,)."""
    a = (z * w).sum(-1) + b                                           # (..., B)
    t = torch.tanh(a)
    z_new = z + u * t.unsqueeze(-1)
    psi_u = (1 - t * t) * (w * u).sum(-1)                             # u.psi(z), (..., B)
    return z_new, torch.log((1 + psi_u).abs() + 1e-12)


@POSTERIORS.register("planar")
class PlanarPosterior(nn.Module):
    """Diagonal Gaussian q_0 followed by ``flows`` planar flows with amortised parameters
    (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows", sec. 4.1, eqs. 10-12).
    u is reparameterised to u-hat so w.u-hat >= -1 (appendix A.1): every step is invertible."""

    def __init__(self, in_features: Optional[int], latent_dim: int, flows: int = 8):
        super().__init__()
        self.latent_dim, self.flows = latent_dim, int(flows)
        d, k = latent_dim, self.flows
        self.head = _linear(in_features, 2 * d + k * (2 * d + 1))  # mu, logvar, then (u, w, b) per flow

    def forward(self, h: torch.Tensor) -> FlowPosterior:
        d, k = self.latent_dim, self.flows
        out = self.head(h)
        mu, logvar = out[..., :d], out[..., d:2 * d]                  # (B, D) each
        u, w, b = out[..., 2 * d:].split([k * d, k * d, k], dim=-1)
        u, w = u.unflatten(-1, (k, d)), w.unflatten(-1, (k, d))       # (B, K, D)
        u = planar_u_hat(u, w)

        def flow(z):
            log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
            for i in range(k):
                z, ld = planar_step(z, u[..., i, :], w[..., i, :], b[..., i])
                log_det = log_det + ld
            return z, log_det
        return FlowPosterior(_base(mu, logvar), flow)


# -- radial ---------------------------------------------------------------------------------
def radial_parameters(a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """alpha = softplus(a) > 0 and beta = -alpha + softplus(b) >= -alpha from unconstrained a, b: the
    radial flow is then invertible (Rezende & Mohamed 2015, appendix A.2)."""
    alpha = F.softplus(a)
    return alpha, -alpha + F.softplus(b)


def radial_step(z: torch.Tensor, z0: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor):
    """f(z) = z + beta h(alpha, r)(z - z0), r = |z - z0|, h = 1 / (alpha + r);
    log|det J| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r)
    (Rezende & Mohamed 2015, eqs. 13-14). z (..., B, D); z0 (B, D); alpha > 0 and beta >= -alpha, (B,)."""
    diff = z - z0
    r = diff.norm(dim=-1)                                             # (..., B)
    h = 1.0 / (alpha + r)
    bh = beta * h
    z_new = z + (bh).unsqueeze(-1) * diff
    d = z.shape[-1]
    log_det = (d - 1) * torch.log1p(bh) + torch.log1p(bh - beta * h * h * r)
    return z_new, log_det


@POSTERIORS.register("radial")
class RadialPosterior(nn.Module):
    """Diagonal Gaussian q_0 followed by ``flows`` radial flows with amortised parameters
    (Rezende & Mohamed 2015, sec. 4.1, eqs. 13-14). alpha = softplus(.) > 0 and
    beta = -alpha + softplus(.) >= -alpha keep each step invertible (appendix A.2)."""

    def __init__(self, in_features: Optional[int], latent_dim: int, flows: int = 8):
        super().__init__()
        self.latent_dim, self.flows = latent_dim, int(flows)
        d, k = latent_dim, self.flows
        self.head = _linear(in_features, 2 * d + k * (d + 2))      # mu, logvar, then (z0, alpha, beta) per flow

    def forward(self, h: torch.Tensor) -> FlowPosterior:
        d, k = self.latent_dim, self.flows
        out = self.head(h)
        mu, logvar = out[..., :d], out[..., d:2 * d]
        centre, a, b = out[..., 2 * d:].split([k * d, k, k], dim=-1)
        centre = centre.unflatten(-1, (k, d))                         # (B, K, D)
        alpha, beta = radial_parameters(a, b)                         # (B, K) each

        def flow(z):
            log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
            for i in range(k):
                z, ld = radial_step(z, centre[..., i, :], alpha[..., i], beta[..., i])
                log_det = log_det + ld
            return z, log_det
        return FlowPosterior(_base(mu, logvar), flow)


# -- inverse autoregressive flow ------------------------------------------------------------
class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (MADE, Germain et al. 2015)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.float(), persistent=False)  # (out, in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class AutoregressiveStep(nn.Module):
    """One IAF step: [m, s] = MADE(z, context); sigma = sigmoid(s); z' = sigma * z + (1 - sigma) * m.

    Output i of m and s depends on z_1..z_{i-1} only (the masks), so dz'/dz is lower triangular
    with diagonal sigma and log|det J| = sum_i log sigma_i (Kingma et al. 2016, eqs. 10-15 and
    algorithm 1, the numerically stable LSTM-style update). s starts near +1 (a forget-gate-like
    bias, as the paper recommends), so each step starts close to the identity.
    """

    def __init__(self, latent_dim: int, hidden: int, context: int):
        super().__init__()
        d = latent_dim
        deg_in = torch.arange(1, d + 1)                               # input degrees 1..D
        deg_h = torch.arange(hidden) % max(1, d - 1) + 1              # hidden degrees in 1..D-1
        self.inp = MaskedLinear(d, hidden, deg_h[:, None] >= deg_in[None, :])
        self.ctx = nn.Linear(context, hidden, bias=False)
        out_mask = (deg_in[:, None] > deg_h[None, :])                 # (D, hidden): strictly autoregressive
        self.out = MaskedLinear(hidden, 2 * d, torch.cat([out_mask, out_mask]))
        with torch.no_grad():
            self.out.bias[d:].fill_(1.0)

    def forward(self, z: torch.Tensor, context: torch.Tensor):
        hid = F.elu(self.inp(z) + self.ctx(context))
        m, s = self.out(hid).chunk(2, dim=-1)
        sigma = torch.sigmoid(s)
        return sigma * z + (1 - sigma) * m, F.logsigmoid(s).sum(-1)


@POSTERIORS.register("iaf")
class IAFPosterior(nn.Module):
    """Diagonal Gaussian q_0 followed by ``flows`` inverse autoregressive flow steps
    (Kingma et al. 2016, "Improved Variational Inference with Inverse Autoregressive Flow").

    The encoder's features give mu, log sigma^2 and a context vector c (``context`` units);
    each step is a MADE network of one ``hidden``-unit layer that reads z and c, with global
    weights. The variable order is reversed between steps (a permutation: |det| = 1).
    """

    def __init__(self, in_features: Optional[int], latent_dim: int, flows: int = 4, hidden: int = 320,
                 context: int = 64):
        super().__init__()
        self.latent_dim, self.flows, self.context = latent_dim, int(flows), int(context)
        self.head = _linear(in_features, 2 * latent_dim + self.context)
        self.steps = nn.ModuleList(AutoregressiveStep(latent_dim, int(hidden), self.context)
                                   for _ in range(self.flows))

    def forward(self, h: torch.Tensor) -> FlowPosterior:
        d = self.latent_dim
        out = self.head(h)
        mu, logvar, ctx = out.split([d, d, self.context], dim=-1)

        def flow(z):
            log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
            for i, step in enumerate(self.steps):
                if i > 0:
                    z = z.flip(-1)
                z, ld = step(z, ctx)
                log_det = log_det + ld
            return z, log_det
        return FlowPosterior(_base(mu, logvar), flow)
