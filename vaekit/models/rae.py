"""Deterministic autoencoders: the plain AE baseline and regularized autoencoders (RAE).

Ghosh, Sajjadi, Vergari, Black & Schoelkopf 2020, "From Variational to Deterministic
Autoencoders" (ICLR). The encoder maps x to one point z = head(encoder(x)); the posterior is a
point mass there. A deterministic autoencoder has no prior it is trained towards, so sampling
uses "ex-post density estimation" (sec. 4): after each epoch a Gaussian (mean and full or
diagonal covariance) is fitted to the codes of the training data, and ``sample`` draws from it
(N(0, I) until the first fit). The paper also fits a 10-component GMM; a single Gaussian is
what this file offers.

No ELBO and no log p(x): a point-mass posterior has no density, so the KL to any prior is
infinite and an autoencoder is not a likelihood model. Its numbers are reconstruction ones
(``recon`` = -log p(x|z) at the code, ``mse``), and ``vaekit evaluate`` says in one line why
``elbo`` and ``nll`` do not apply.
"""
from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch import nn
from torch.distributions import Distribution, MultivariateNormal, constraints

from ..contract.bounds import elbo_terms
from ..contract.output import Capabilities, Latent, ModelOutput
from ..errors import VaekitError
from ..objectives.base import LossOutput, Objective
from ..registry import MODELS, OBJECTIVES
from .base import Model

COVARIANCES = ("full", "diagonal")
PENALTIES = ("l2", "gp")


class PointMass(Distribution):
    """q(z|x) = delta(z - loc): batch (B,), event (D,). ``rsample`` returns the point (with its
    gradient); ``log_prob`` is 0 (the convention that makes the KL -log p(z), see the module)."""

    arg_constraints = {"loc": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: torch.Tensor, validate_args=None):
        self.loc = loc
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return PointMass(self.loc.expand(torch.Size(batch_shape) + self.event_shape))

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        return self.loc.expand(torch.Size(sample_shape) + self.loc.shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.zeros(value.shape[:-1], dtype=value.dtype, device=value.device)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        return torch.zeros_like(self.loc)


@MODELS.register("ae")
class Autoencoder(Model):
    """encoder -> linear head -> z (B, D) -> decoder -> likelihood: a deterministic autoencoder.

    The prior is a Gaussian fitted to the training codes after each epoch (``covariance``:
    ``"full"`` or ``"diagonal"``), held in buffers so checkpoints and resume carry it.
    """

    capabilities = Capabilities(posterior_variance=False, likelihood=False)
    missing_because = {"posterior_variance": "its encoder gives one point per example, with no variance",
                       "likelihood": "a deterministic autoencoder has a point-mass posterior, so no ELBO or log "
                                     "p(x); compare its reconstructions (--metrics recon)"}
    deterministic_posterior = True
    objectives = ("ae", "rae")  # an ELBO would pull the codes towards the fitted prior it is measured with

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, latent_dim: int,
                 data_shape, num_classes: Optional[int] = None, covariance: str = "full"):
        super().__init__(latent_dim, data_shape, num_classes)
        if covariance not in COVARIANCES:
            raise VaekitError(f"the ae model's covariance must be one of {', '.join(COVARIANCES)}, got {covariance!r}")
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.covariance = covariance
        out = getattr(encoder, "out_dim", None)
        self.head = nn.Linear(out, latent_dim) if out else nn.LazyLinear(latent_dim)
        self.register_buffer("prior_loc", torch.zeros(latent_dim))           # N(0, I) until fitted
        self.register_buffer("prior_scale_tril", torch.eye(latent_dim))

    @classmethod
    def from_config(cls, cfg, parts, covariance: str = "full") -> "Autoencoder":
        likelihood = parts.likelihood()
        encoder, decoder = parts.networks(cfg.latent_dim, likelihood.params_per_value)
        return cls(encoder, decoder, likelihood, cfg.latent_dim, parts.shape, parts.num_classes, covariance)

    def prior(self) -> MultivariateNormal:
        """The Gaussian fitted to the training codes: batch (), event (latent_dim,)."""
        return MultivariateNormal(self.prior_loc, scale_tril=self.prior_scale_tril, validate_args=False)

    def codes(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z = head(encoder(x)), (B, latent_dim)."""
        x = self.check_shape(x)
        return self.head(self.encoder(x, self.condition(c, x.shape[0])))

    def encode(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        return PointMass(self.codes(x, c))

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> ModelOutput:
        z = self.codes(x, c)
        return ModelOutput(px=self.decode(z, c), latents=[Latent(PointMass(z), z, self.prior())])

    @torch.no_grad()
    def fit_prior(self, batches: Iterator) -> None:
        """Ex-post density estimation (Ghosh et al. 2020, sec. 4): the maximum-likelihood Gaussian
        of the training codes, mean and covariance (1/N, full or diagonal), plus 1e-6 I."""
        n, total, outer = 0, None, None
        for x, y in batches:
            z = self.codes(x, y if self.conditioned else None).double()      # (B, D)
            total = z.sum(0) if total is None else total + z.sum(0)
            outer = z.t() @ z if outer is None else outer + z.t() @ z
            n += z.shape[0]
        if n == 0:
            return
        mean = total / n
        cov = outer / n - torch.outer(mean, mean)                             # (D, D)
        if self.covariance == "diagonal":
            cov = torch.diag(cov.diagonal())
        cov = cov + 1e-6 * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        tril, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0:  # not positive definite in floating point: keep the variances
            tril = torch.diag(cov.diagonal().clamp(min=1e-6).sqrt())
        self.prior_loc.copy_(mean.to(self.prior_loc.dtype))
        self.prior_scale_tril.copy_(tril.to(self.prior_scale_tril.dtype))


# -- objectives ------------------------------------------------------------------------------
def squared_error(px: Distribution, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per value of the decoded mean, a scalar (for logs, in data units)."""
    return (px.mean - x).pow(2).mean()


def decoder_l2(model) -> torch.Tensor:
    """||theta_D||^2: the sum of squares of the decoder's parameters (Ghosh et al. 2020, RAE-L2)."""
    decoder = getattr(model, "decoder", None)
    if decoder is None:
        raise VaekitError("the rae objective's l2 penalty needs a model with a decoder network (model.decoder)")
    return sum(p.pow(2).sum() for p in decoder.parameters() if p.requires_grad)


def gradient_penalty(model, z: torch.Tensor, c: Optional[torch.Tensor], px: Distribution) -> torch.Tensor:
    """||grad_z D(z)||^2 per example (B,): D(z) is the decoded mean and the gradient is of its sum over
    the example's values (grad_outputs of ones, as ``tf.gradients`` takes it in Ghosh et al.'s
    RAE-GP, and as pythae does), i.e. J(z)^T 1, not the Jacobian's Frobenius norm. Under no_grad
    (validation) the decoder is run again on a detached z, so the number is still reported."""
    if torch.is_grad_enabled() and z.requires_grad:
        out = px.mean
        (g,) = torch.autograd.grad(out, z, torch.ones_like(out), create_graph=True)
    else:
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            out = model.decode(z, c).mean
            (g,) = torch.autograd.grad(out, z, torch.ones_like(out))
    return g.reshape(g.shape[0], -1).pow(2).sum(1)


def _recon(model, x, c):
    out = model(x, c)
    if len(out.latents) != 1:
        raise VaekitError("the ae and rae objectives need a model with one latent layer")
    return out, elbo_terms(out, x)


@OBJECTIVES.register("ae")
class AEObjective(Objective):
    """loss = -log p(x|z) at the encoder's point z: a plain autoencoder (no latent regularizer).
    Reported: ``recon`` (nats per example, monitored) and ``mse`` (per value, data units)."""

    monitor = ("recon", "min")

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out, t = _recon(model, x, c)
        return LossOutput({"main": t.recon.mean()}, {"recon": t.recon.mean(), "mse": squared_error(out.px, x)})


@OBJECTIVES.register("rae")
class RAEObjective(Objective):
    """loss = -log p(x|z) + beta ||z||^2 / 2 + lam L_REG (Ghosh et al. 2020, eq. 11), where L_REG is

    - ``penalty="l2"``: ||theta_D||^2, weight decay on the decoder's parameters (RAE-L2), written
      into the loss (so it works with any optimizer);
    - ``penalty="gp"``: ||grad_z D(z)||^2, the gradient penalty on the decoder output at the
      encoder's codes (RAE-GP), see :func:`gradient_penalty`.

    The paper's reconstruction term is a squared error; here it is the model's -log p(x|z) in nats
    (a Gaussian likelihood gives the squared error back). Defaults beta = 1e-4, lam = 1e-7 are
    those of pythae's RAE_L2/RAE_GP configs, which we believe follow the paper's; not checked
    against its appendix. Reported terms: ``recon`` (monitored), ``z_l2`` (||z||^2 / 2),
    ``l2`` or ``gp`` (the regularizer before its weight) and ``mse``. ``kl_weight`` (warm-up)
    scales the latent penalty beta ||z||^2 / 2 like a KL.
    """

    monitor = ("recon", "min")

    def __init__(self, penalty: str = "l2", beta: float = 1e-4, lam: float = 1e-7):
        if penalty not in PENALTIES:
            raise VaekitError(f"the rae objective's penalty must be one of {', '.join(PENALTIES)}, got {penalty!r}")
        if beta < 0 or lam < 0:
            raise VaekitError(f"the rae objective needs beta >= 0 and lam >= 0, got beta={beta}, lam={lam}")
        self.penalty, self.beta, self.lam = penalty, float(beta), float(lam)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out, t = _recon(model, x, c)
        recon = t.recon
        z = out.latents[0].z
        z_l2 = 0.5 * z.reshape(z.shape[0], -1).pow(2).sum(1).mean()
        if self.penalty == "l2":
            reg = decoder_l2(model)
        else:
            reg = gradient_penalty(model, z, c, out.px).mean()
        loss = recon.mean() + kl_weight * self.beta * z_l2 + self.lam * reg
        terms = {"recon": recon.mean(), "z_l2": z_l2, self.penalty: reg, "mse": squared_error(out.px, x)}
        return LossOutput({"main": loss}, terms)
