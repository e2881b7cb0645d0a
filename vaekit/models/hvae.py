"""The Hamiltonian VAE: the Gaussian posterior sample is moved by tempered Hamiltonian dynamics.

Caterini, Doucet & Sejdinovic 2018, "Hamiltonian Variational Auto-Encoder" (NeurIPS), sec. 4,
building on Hamiltonian importance sampling (Neal 2005). Cross-checked against the authors'
TensorFlow code (github.com/anthonycaterini/hvae-nips, ``mnist/models.py``: ``get_elbo``,
``get_nll``, ``_his``) and pythae's ``HVAE`` (benchmark_VAE, ``models/hvae``).

z_0 ~ q_0(z|x) = N(mu(x), diag sigma(x)^2), rho_0 = gamma_0 / sqrt(beta_0), gamma_0 ~ N(0, I). Then K
times: one leapfrog step of the Hamiltonian H(z, rho) = U(z) + |rho|^2 / 2, U(z) = -log p(x, z)
(step size eps > 0, one per latent dimension), followed by tempering rho <- sqrt(beta_{k-1} / beta_k) rho.
The map (z_0, rho_0) -> (z_K, rho_K) is invertible; leapfrog preserves volume, so
log|det J| = sum_k (D/2) log(beta_{k-1} / beta_k) = (D/2) log(beta_0 / beta_K). With the reverse
momentum density N(rho_K; 0, beta_K^-1 I) (beta_K = 1 for K >= 1) the single-sample bound is

    log p(x, z_K) + log N(rho_K; 0, beta_K^-1 I) - log q_0(z_0) - log N(rho_0; 0, beta_0^-1 I) + log|det J|

(the estimator of the paper's Hamiltonian ELBO; the authors' ``get_nll`` uses exactly these terms as its
importance weight). vaekit reads it through the contract: the latent's q is a
:class:`~vaekit.distributions.flows.FlowPosterior` over z_K whose "log-density" at its own sample is

    log q_K(z_K) = log q_0(z_0) + log N(rho_0; 0, beta_0^-1 I) - log|det J| - log N(rho_K; 0, beta_K^-1 I),

so ``elbo_terms`` (MC KL) gives the bound above and ``log_importance_weights`` its importance weights.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional

import torch
from torch import nn
from torch.distributions import Normal

from ..contract.output import Latent, ModelOutput
from ..distributions.flows import FlowPosterior
from ..errors import VaekitError
from ..registry import MODELS
from .vae import VAE


def tempering_schedule(sqrt_beta0: torch.Tensor, steps: int) -> List[torch.Tensor]:
    """[sqrt beta_0, ..., sqrt beta_K], the quadratic schedule 1/sqrt(beta_k) = (1 - 1/sqrt(beta_0)) k^2/K^2
    + 1/sqrt(beta_0), so beta_K = 1 (Caterini et al. 2018, sec. 4, "fixed" tempering, as pythae implements
    it; the authors' code takes the same quadratic in 1/beta_k instead)."""
    inv0 = 1.0 / sqrt_beta0
    return [sqrt_beta0] + [1.0 / ((1.0 - inv0) * (k / steps) ** 2 + inv0) for k in range(1, steps + 1)]


def hamiltonian_flow(z: torch.Tensor, rho: torch.Tensor, grad_u: Callable[[torch.Tensor], torch.Tensor],
                     eps: torch.Tensor, sqrt_betas: List[torch.Tensor]):
    """K = len(sqrt_betas) - 1 tempered leapfrog steps (Caterini et al. 2018, sec. 4; Neal 2005):

        rho' = rho - eps/2 * dU/dz(z);  z <- z + eps * rho';  rho'' = rho' - eps/2 * dU/dz(z);
        rho <- sqrt(beta_{k-1} / beta_k) * rho''.

    z, rho (N, D); eps (D,) or scalar. Returns z_K, rho_K and log|det d(z_K, rho_K)/d(z_0, rho_0)|, (N,):
    leapfrog has unit Jacobian, each tempering step contributes D log sqrt(beta_{k-1} / beta_k).
    """
    log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
    g = grad_u(z) if len(sqrt_betas) > 1 else None
    for k in range(1, len(sqrt_betas)):
        rho = rho - 0.5 * eps * g
        z = z + eps * rho
        g = grad_u(z)                                   # reused by the next step's first half
        ratio = sqrt_betas[k - 1] / sqrt_betas[k]
        rho = ratio * (rho - 0.5 * eps * g)
        log_det = log_det + z.shape[-1] * torch.log(torch.as_tensor(ratio, dtype=z.dtype, device=z.device))
    return z, rho, log_det


def momentum_log_density(rho: torch.Tensor, sqrt_beta) -> torch.Tensor:
    """log N(rho; 0, beta^-1 I), (N,)."""
    scale = 1.0 / torch.as_tensor(sqrt_beta, dtype=rho.dtype, device=rho.device)
    return Normal(torch.zeros_like(rho), scale.expand_as(rho)).log_prob(rho).sum(-1)


@MODELS.register("hvae")
class HVAE(VAE):
    """The composed VAE whose posterior sample is refined by ``n_lf`` tempered leapfrog steps on log p(x, z).

    ``eps_lf``: initial leapfrog step size (one per latent dimension, learnt if ``learn_eps``, kept > 0 as
    exp of a parameter); ``beta_zero``: initial inverse temperature in (0, 1] (learnt if
    ``learn_beta_zero``, as sqrt(beta_0) = sigmoid(a)). Defaults n_lf = 3, eps_lf = 0.001, beta_zero =
    0.3 are pythae's; the paper learns eps and beta_0, pythae by default does not.

    ``encode`` and ``embed`` give the Gaussian q_0(z_0|x) (no dynamics: a latent map needs no momentum
    or decoder gradients); ``forward`` runs the dynamics, so the training bound and ``vaekit evaluate``'s
    ELBO and importance-sampled log p(x) are the HVAE's. The dynamics need d log p(x, z)/dz, so they take
    gradients wrt z even under ``torch.no_grad`` (locally; nothing else gets a graph there).
    """

    def __init__(self, *args, n_lf: int = 3, eps_lf: float = 0.001, beta_zero: float = 0.3,
                 learn_eps: bool = True, learn_beta_zero: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if int(n_lf) != n_lf or n_lf < 0:
            raise VaekitError(f"the hvae's n_lf (leapfrog steps) must be a whole number >= 0, got {n_lf}")
        if not eps_lf > 0:
            raise VaekitError(f"the hvae's eps_lf (leapfrog step size) must be > 0, got {eps_lf}")
        if not 0 < beta_zero <= 1 or (beta_zero == 1 and learn_beta_zero):
            raise VaekitError(f"the hvae's beta_zero (initial inverse temperature) must be in (0, 1), or exactly 1 "
                              f"with learn_beta_zero=false (no tempering); got {beta_zero}")
        self.n_lf = int(n_lf)
        log_eps = torch.full((self.latent_dim,), math.log(eps_lf))
        s = math.sqrt(beta_zero)
        beta_logit = torch.tensor(math.log(s / (1 - s)) if s < 1 else math.inf)
        for name, value, learn in (("log_eps", log_eps, learn_eps), ("beta_logit", beta_logit, learn_beta_zero)):
            if learn:
                setattr(self, name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)

    @property
    def eps(self) -> torch.Tensor:
        """The leapfrog step sizes, (D,)."""
        return self.log_eps.exp()

    @property
    def sqrt_beta0(self) -> torch.Tensor:
        return torch.sigmoid(self.beta_logit)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> ModelOutput:
        q0 = self.encode(x, c)
        q = FlowPosterior(q0, self._flow(x.to(self.device), c))
        z = q.rsample()                                                # z_K, (B, D)
        return ModelOutput(px=self.decode(z, c), latents=[Latent(q, z, self.prior())])

    def _flow(self, x: torch.Tensor, c: Optional[torch.Tensor]):
        """z_0 (*S, B, D) -> (z_K, log q_0(z_0) - log q_K(z_K)) for :class:`FlowPosterior` (module docstring)."""
        b, d = x.shape[0], self.latent_dim

        def flow(z0):
            z = z0.reshape(-1, d)                                      # (S*B, D), sample-major like x.repeat
            n = z.shape[0] // b
            xr = x.repeat(n, *([1] * (x.dim() - 1)))
            cr = None if c is None else torch.as_tensor(c, device=x.device).reshape(-1).expand(b).repeat(n)
            sqrt_betas = tempering_schedule(self.sqrt_beta0, self.n_lf)
            rho0 = torch.randn_like(z) / sqrt_betas[0]
            zk, rhok, log_det = hamiltonian_flow(z, rho0, lambda v: self.grad_potential(v, xr, cr), self.eps,
                                                 sqrt_betas)
            shift = (log_det + momentum_log_density(rhok, sqrt_betas[-1])
                     - momentum_log_density(rho0, sqrt_betas[0]))
            return zk.reshape(z0.shape), shift.reshape(z0.shape[:-1])
        return flow

    def grad_potential(self, z: torch.Tensor, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """dU/dz = -d/dz [log p(x|z) + log p(z)], (N, D). With gradients on (training), the result keeps its
        graph (create_graph) so encoder, decoder, eps and beta_0 are trained through the dynamics; under
        ``no_grad`` the gradient wrt z alone is taken locally and returned detached."""
        keep = torch.is_grad_enabled()
        if torch.is_inference_mode_enabled():
            raise VaekitError("the hvae's dynamics need gradients of log p(x, z): run it under torch.no_grad(), "
                              "not torch.inference_mode()")
        with torch.enable_grad():
            if not (keep and z.requires_grad):
                z = z.detach().requires_grad_(True)
            log_joint = self.decode(z, c).log_prob(x) + self.prior().log_prob(z)   # (N,)
            (g,) = torch.autograd.grad(log_joint.sum(), z, create_graph=keep)
        return -g
