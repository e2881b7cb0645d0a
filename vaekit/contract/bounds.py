"""The one shared piece of maths: ELBO terms and importance weights for any model.

Objectives, validation, ``vaekit evaluate`` and plots all read a :class:`ModelOutput`
through these two functions; no variant re-derives them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from ..distributions.kl import kl_term
from ..errors import VaekitError
from .output import ModelOutput

MAX_ROWS = 8192       # examples x samples run at once without gradients: bounds memory whatever k is
MAX_VALUES = 1 << 21  # and at most this many data values (a conv net's activations grow with the input)


@dataclass
class ElboTerms:
    """Per-example terms in nats, each (B,): ``elbo = -(recon + kl)``, ``kl = sum(kls)``."""

    recon: torch.Tensor        # -log p(x|z) at the posterior sample
    kls: List[torch.Tensor]    # KL of each stochastic layer, top to bottom
    kl: torch.Tensor
    elbo: torch.Tensor


def elbo_terms(out: ModelOutput, x: torch.Tensor, analytic_kl: bool = True) -> ElboTerms:
    """The evidence lower bound log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)) and its terms.

    Kingma & Welling 2014, eq. 3; with several stochastic layers the KL of each layer is taken
    given the sampled layer above (Sonderby et al. 2016, eq. 4). ``analytic_kl`` uses the closed
    form where torch registers one; ``False`` uses log q(z) - log p(z) at the sample everywhere
    (the single-sample estimate, which IWAE with k = 1 equals).
    """
    recon = -out.px.log_prob(x)                                       # (B,)
    if analytic_kl:
        kls = [kl_term(l.q, l.prior, l.z) for l in out.latents]
    else:
        kls = [l.q.log_prob(l.z) - l.prior.log_prob(l.z) for l in out.latents]
    kl = torch.stack(kls).sum(0) if kls else torch.zeros_like(recon)
    return ElboTerms(recon, kls, kl, -(recon + kl))


def log_weight_parts(out: ModelOutput, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """log p(x given z) and sum_layers log p(z) - log q(z given x) at the output's samples, (B,) each."""
    log_px = out.px.log_prob(x)
    log_ratio = torch.zeros_like(log_px)
    for layer in out.latents:  # a layer may hold its samples as (k, B, D): flattened like x
        log_ratio = log_ratio + (layer.prior.log_prob(layer.z) - layer.q.log_prob(layer.z)).reshape(log_px.shape)
    return log_px, log_ratio


def importance_weight_parts(model, x: torch.Tensor, c: Optional[torch.Tensor] = None, k: int = 1,
                            max_rows: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`log_weight_parts` for k posterior samples per example, (k, B) each.

    A model with ``forward_many(x, c, n)`` (the one-latent VAE) encodes each example once and
    decodes n posterior samples of it; any other structure, a hierarchy included, gets the
    batch repeated n times (sample-major) and draws its samples as in training. Both give
    z in the same order from the same random numbers. ``max_rows`` bounds the rows (k * B)
    run at once, further capped at :data:`MAX_VALUES` data values, so memory stays bounded
    whatever k and the data's size are; gradients flow with grad enabled.
    """
    if int(k) < 1:
        raise VaekitError(f"importance sampling needs k >= 1 samples per example, got k={k}")
    b = x.shape[0]
    if c is not None:  # labels (B,), or labels and covariates packed (B, 1 + m), kept 2-D
        c = torch.as_tensor(c, device=x.device)
        c = c.reshape(-1).expand(b) if c.numel() == 1 else c           # one label for the whole batch
    if max_rows:
        max_rows = min(max_rows, max(1, MAX_VALUES // max(1, x[0].numel())))
    chunk = k if not max_rows else max(1, min(k, max_rows // max(b, 1)))
    parts = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        xr = x.repeat(n, *([1] * (x.dim() - 1)))                     # (n*B, ...)
        cr = None if c is None else c.repeat(n, *([1] * (c.dim() - 1)))
        out = model.forward_many(x, c, n) if hasattr(model, "forward_many") else None
        out = model(xr, cr) if out is None else out
        parts.append([t.view(n, b) for t in log_weight_parts(out, xr)])
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def log_importance_weights(model, x: torch.Tensor, c: Optional[torch.Tensor] = None, k: int = 1,
                           max_rows: Optional[int] = None) -> torch.Tensor:
    """log w_k = log p(x, z_k) - log q(z_k given x) for k posterior samples per example, (k, B).

    Burda et al. 2016 (IWAE), eq. 8: log (1/k) sum_k w_k is a lower bound on log p(x) that is
    at least the ELBO in expectation and tightens as k grows. See :func:`importance_weight_parts`.
    """
    log_px, log_ratio = importance_weight_parts(model, x, c, k, max_rows)
    return log_px + log_ratio


def importance_sampled_log_likelihood(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/k) sum_k w_k, (B,), from log weights (k, B)."""
    return torch.logsumexp(log_w, dim=0) - torch.log(torch.tensor(float(log_w.shape[0]), dtype=log_w.dtype))
