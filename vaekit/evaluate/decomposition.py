"""Where the KL goes: per latent dimension and layer, active units, and a collapse warning."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch

from ..data.batching import inference_batch_size, iterate_batches
from ..data.types import TensorData
from ..distributions import kl_per_dimension
from ..models.helpers import evaluating
from ..registry import METRICS
from .base import EvalContext, Metric

ACTIVE = 0.01  # Burda et al. 2016, sec. 5.2: a unit is active if Cov_x(E_q[u]) > 10^-2


def unit_activity(means: torch.Tensor) -> torch.Tensor:
    """A_u = Cov_x(E_q[u]) per unit (Burda et al. 2016, "Importance Weighted Autoencoders", eq. 19): the
    variance over the data of the posterior means (N, D), (D,). For a latent map (N, C, h, w) a unit is a
    channel, and its activity is that variance averaged over the channel's h * w positions, (C,): a
    position of a map is no unit of its own, since a convolutional encoder shares one filter across them."""
    var = means.double().var(dim=0, correction=0)
    return var if var.dim() == 1 else var.flatten(1).mean(1)


def active_units(means: torch.Tensor, threshold: float = ACTIVE) -> torch.Tensor:
    """Which latent units (dimensions, or channels of a map) are active: :func:`unit_activity` exceeds
    ``threshold`` (Burda et al. 2016)."""
    return unit_activity(means) > threshold


def latent_statistics(model, data: TensorData, batch_size: Optional[int] = None) -> List[dict]:
    """Per stochastic layer (top first): posterior means (N, *event) and the mean KL per unit, (D,) or, for a
    latent map, per channel (C,) summed over its positions, where the layer's KL factorizes in closed form
    (else None)."""
    means: List[list] = []
    kls: List[Optional[torch.Tensor]] = []
    n = 0
    with evaluating(model):
        for x, y in iterate_batches(data, batch_size or inference_batch_size(data), device=model.device):
            out = model(x, y if model.conditioned else None)
            if not means:
                means = [[] for _ in out.latents]
                kls = [torch.zeros(l.z.shape[1], dtype=torch.float64) for l in out.latents]
            for i, layer in enumerate(out.latents):
                mean = layer.q.mean
                means[i].append((mean if mean.dim() == 4 else mean.flatten(1)).double().cpu())
                per_dim = kl_per_dimension(layer.q, layer.prior)          # (B, D), (B, C, h, w) or None
                if per_dim is not None and per_dim.dim() > 2:
                    per_dim = per_dim.flatten(2).sum(2)                      # (B, C): a channel's KL
                kls[i] = None if per_dim is None or kls[i] is None else kls[i] + per_dim.double().sum(0).cpu()
            n += x.shape[0]
    return [{"means": torch.cat(m), "kl_per_dim": None if k is None else k / n} for m, k in zip(means, kls)]


def collapse_advice(objective: str = "elbo") -> str:
    """What to try against a collapsed latent, for the objective the model was trained with."""
    if objective == "elbo":
        return ("try KL warm-up (--warmup N), free bits (--free-bits 0.5), a smaller --beta, or, with a "
                "gaussian likelihood, the default --sigma optimal")
    return (f"the {objective} objective weights its own terms (train longer, or change its options: "
            f"--set train.objective.args.NAME=VALUE; `vaekit models` names its paper)")


def decomposition(model, data: TensorData, objective: str = "elbo") -> Dict[str, object]:
    """Active units and KL per dimension of every layer, with a warning when a layer has collapsed;
    ``objective``: what the model was trained with, for the advice."""
    layers = latent_statistics(model, data)
    out: Dict[str, object] = {}
    warnings = []
    for i, layer in enumerate(layers):
        suffix = f"_{i + 1}" if len(layers) > 1 else ""
        active = active_units(layer["means"])
        out[f"active_units{suffix}"] = int(active.sum())
        spatial = layer["means"].dim() == 4
        out[f"latent_{'channels' if spatial else 'dims'}{suffix}"] = int(active.numel())
        if layer["kl_per_dim"] is not None:
            out[f"kl_per_{'channel' if spatial else 'dim'}{suffix}"] = [round(float(v), 4) for v in layer["kl_per_dim"]]
        if not bool(active.any()):
            where = f"layer {i + 1}" if len(layers) > 1 else "the latent"
            warnings.append(f"posterior collapse in {where}: no dimension's posterior mean varies with the data "
                            f"(variance above {ACTIVE}), so the decoder ignores it; {collapse_advice(objective)}")
    if warnings:
        out["warning"] = "; ".join(warnings)
    return out


@METRICS.register("au")
class ActiveUnitsMetric(Metric):
    """Active units (Burda et al. 2016) and the KL per latent dimension and layer."""

    title = "active units"
    paper = "Burda et al. 2016, Importance Weighted Autoencoders, sec. 5.2"
    meanings = {"active_units": f"latent dimensions (channels of a latent map) whose posterior mean varies "
                                f"with x (variance > {ACTIVE}, averaged over a channel's positions)",
                "latent_dims": "latent dimensions in all",
                "latent_channels": "channels of the latent map in all",
                "kl_per_dim": "mean KL of each latent dimension, nats",
                "kl_per_channel": "mean KL of each channel of the latent map, summed over its positions, nats"}

    def unavailable(self, model, data: TensorData, ctx: EvalContext):
        reason = super().unavailable(model, data, ctx)
        if reason:
            return reason
        with evaluating(model):
            out = model(data.x[:2].to(model.device), None if not model.conditioned or data.c is None
                        else data.c[:2].to(model.device))
        if not out.latents:
            return f"the {model.name} model has no stochastic latent"
        for layer in out.latents:
            base = layer.q.base_dist if hasattr(layer.q, "base_dist") else layer.q
            if layer.z.dim() not in (2, 4) or isinstance(base, torch.distributions.OneHotCategorical):
                return (f"active units are defined for vector latents and latent maps with a posterior mean, and the "
                        f"{model.name} model's latent is of shape {tuple(layer.z.shape[1:])} (discrete codes)")
        return None

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, object]:
        return decomposition(model, data, "elbo" if ctx is None else ctx.objective)
