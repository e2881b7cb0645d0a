"""scVI's learned library size: a log-normal latent l per cell that scales the count likelihood's proportions.

Lopez, Regier, Cole, Jordan & Yosef 2018 (Nature Methods, Methods "The scVI probabilistic model"): log l ~
N(mu_b, sigma_b^2), with mu_b and sigma_b^2 the mean and variance of the log library sizes (log total counts) of
the training cells of batch b; the mean count of gene g is l rho_g. Inference (ibid., "Variational inference"):
q(log l | x, b) = N(m(x, b), v(x, b)) from an encoder of its own (one hidden layer, scvi-tools' ``l_encoder``,
v = exp(.) + 1e-4). The ELBO gains -KL(q(log l) || N(mu_b, sigma_b^2)), which enters through the shared maths
(:func:`vaekit.contract.bounds.elbo_terms`) as one more :class:`~vaekit.contract.output.Latent` after z.

``--library latent`` (``model.likelihood.args.library``) turns it on for a count likelihood on the ``vae``
structure; ``observed`` (the default, as scvi-tools' ``use_observed_lib_size=True``) reads l from x. The batch b
is the first covariate's category (``--covariate``), one prior for all cells without covariates, as scvi-tools'
``use_observed_lib_size=False`` with its ``batch_key``.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional

import torch
from torch import nn
from torch.distributions import Independent, Normal

from ..errors import VaekitError
from ..nn.mlp import MLPEncoder

VAR_EPS = 1e-4       # scvi-tools' Encoder var_eps: q's variance is exp(.) + this
PRIOR_VAR_MIN = 1e-4  # a batch of cells with one library size gets this prior variance, not 0
ENCODER_ARGS = ("activation", "batch_norm", "dropout", "log_input")  # taken from an mlp network's args


class LibraryLatent(nn.Module):
    """q(log l | x, b) and p(log l | b) for ``batches`` categories of the first covariate (1 without)."""

    def __init__(self, data_shape, cond_dim: int, batches: int = 1, hidden: int = 128, covariates: int = 0,
                 **encoder_args):
        super().__init__()
        self.batches, self.width = int(batches), 1 + int(covariates)  # c packs the label and the covariates
        self.encoder = MLPEncoder(data_shape, hidden=(int(hidden),), cond_dim=cond_dim, **encoder_args)
        self.head = nn.Linear(int(hidden), 2)  # the mean and the pre-activation variance of log l
        self.register_buffer("log_mean", torch.zeros(self.batches))  # mu_b, set by fit from the training data
        self.register_buffer("log_var", torch.ones(self.batches))    # sigma_b^2

    def posterior(self, x: torch.Tensor, condition: Optional[torch.Tensor]) -> Independent:
        """q(log l | x, b): batch (B,), event (1,)."""
        mean, raw = self.head(self.encoder(x, condition)).chunk(2, dim=-1)
        return Independent(Normal(mean, (raw.clamp(max=20.0).exp() + VAR_EPS).sqrt()), 1)

    def codes(self, c: Optional[torch.Tensor], n: int) -> torch.Tensor:
        """Each example's batch: the first covariate's code in the packed ``c`` (B, 1 + m), or 0."""
        if self.batches == 1 or c is None:
            return torch.zeros(n, dtype=torch.long, device=self.log_mean.device)
        c = torch.as_tensor(c, device=self.log_mean.device).long()
        return c.reshape(-1, self.width)[:, 1].expand(n)

    def prior(self, c: Optional[torch.Tensor], n: int) -> Independent:
        """N(mu_b, sigma_b^2) of each example's batch b: batch (n,), event (1,)."""
        b = self.codes(c, n)
        return Independent(Normal(self.log_mean[b, None], self.log_var[b, None].sqrt()), 1)

    @torch.no_grad()
    def fit(self, batches: Iterator) -> None:
        """mu_b and sigma_b^2: the mean and (population) variance of log sum_g x_g over the training cells of
        each batch b, log 0 taken as 0 (scvi-tools' masked log); a batch with no training cells gets those of
        all cells. Called once before training (``Model.fit_data``); a resumed run restores its own."""
        logs, codes = [], []
        for x, c in batches:
            total = x.flatten(1).sum(1).double()
            logs.append(torch.where(total > 0, total.clamp(min=1).log(), torch.zeros_like(total)).cpu())
            codes.append(self.codes(c, x.shape[0]).cpu())
        if not logs:
            raise VaekitError("--library latent sets its prior from the training cells' library sizes, and there "
                              "are no training cells")
        logs, codes = torch.cat(logs), torch.cat(codes)
        means, variances = torch.empty(self.batches, dtype=torch.float64), torch.empty(self.batches,
                                                                                       dtype=torch.float64)
        for b in range(self.batches):
            part = logs[codes == b] if (codes == b).any() else logs
            means[b], variances[b] = part.mean(), part.var(unbiased=False)
        self.log_mean.copy_(means)
        self.log_var.copy_(variances.clamp(min=PRIOR_VAR_MIN))
        self.head.bias[0] = logs.mean()  # q's mean starts at the mean log total, not 0 (a KL of ~100s of nats)


def attach_library(model, cfg) -> None:
    """``model.library_latent`` where the likelihood asks for ``library="latent"`` (none otherwise)."""
    likelihood = getattr(model, "likelihood", None)
    if getattr(likelihood, "library_mode", "observed") != "latent":
        return
    from .vae import VAE

    if not isinstance(model, VAE) or type(model).forward is not VAE.forward:
        raise VaekitError(f"--library latent (scVI's learned library size) is built into the vae structure's "
                          f"forward pass, which the {model.name} model replaces; use a model on the vae structure "
                          "(vae, beta-vae, iwae, the scvi recipe) or --library observed")
    args = dict(cfg.network.args) if cfg.network.name == "mlp" else {}
    hidden = (args.get("hidden") or [128])[0]
    cond = (model.num_classes or 0) + sum((cfg.covariates or {}).values())
    batches = next(iter((cfg.covariates or {}).values()), 1)
    model.library_latent = LibraryLatent(model.data_shape, cond, batches, hidden, len(cfg.covariates or {}),
                                         **{k: args[k] for k in ENCODER_ARGS if k in args})


def library_scale(log_l: torch.Tensor) -> torch.Tensor:
    """l = exp(log l), (B, 1), what scales the proportions (log l clamped at log 2^24, float32's whole numbers)."""
    return log_l.reshape(-1, 1).clamp(max=24 * math.log(2)).exp()
