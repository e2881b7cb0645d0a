"""The encoder and decoder of a model as two traceable modules with named tensor outputs.

encoder: x (B, *data_shape) [, label (B,) int64] -> the posterior's parameters, ``mean`` first (the code
``model.embed`` gives, the point ``decode`` reads); decoder: z (B, *latent_shape) [, label] -> ``mean``, the
likelihood's mean E[x | z]. A posterior family without a closed-form variance (flows, Gumbel-softmax, the
Poincaré ball) gives its own parameters instead of ``var``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..models import Model
from ..models.base import distribution_mean


def posterior_parameters(q: Distribution, prefix: str = "") -> Dict[str, torch.Tensor]:
    """The named parameters of q (batch (B,)), without ``mean``; {} for a point mass."""
    from ..distributions.flows import FlowPosterior
    from ..distributions.gumbel import GroupedConcrete
    from ..distributions.poincare import WrappedNormal
    from ..distributions.vmf import VonMisesFisher
    from ..models.jointvae import Concatenated

    base = q.base_dist if isinstance(q, Independent) else q
    if isinstance(base, Normal):
        return {prefix + "var": base.scale ** 2}
    if isinstance(q, FlowPosterior):
        return {prefix + "base_mean": q.base.mean, prefix + "base_var": q.base.variance}
    if isinstance(q, GroupedConcrete):
        return {prefix + "logits": q.logits}
    if isinstance(q, WrappedNormal):
        return {prefix + "loc": q.loc, prefix + "scale": q.scale}
    if isinstance(q, VonMisesFisher):
        return {prefix + "concentration": q.concentration}
    if isinstance(q, Concatenated):
        out: Dict[str, torch.Tensor] = {}
        for i, part in enumerate(q.parts):
            out.update(posterior_parameters(part, f"{prefix}part{i}_"))
        return out
    return {}


def condition_for_export(model: Model):
    """``model.condition`` without its Python range check (a traced graph cannot raise): the one-hot of the
    labels by comparison, which every exporter maps to plain ops; the ONNX server checks the range itself."""
    k = int(model.num_classes or 0)

    def condition(c, n):
        if not k:
            return None
        c = torch.as_tensor(c, device=model.device).reshape(-1, 1)
        return (c == torch.arange(k, device=c.device)).float().expand(n, k)

    return condition


@contextmanager
def export_mode(model: Model):
    """The model in eval mode with the traceable condition and no distribution argument checks, restored
    afterwards."""
    was, validate = model.training, Distribution._validate_args
    model.eval()
    model.condition = condition_for_export(model)  # an instance attribute shadows the method
    Distribution.set_default_validate_args(False)  # argument checks read values: no graph can hold them
    try:
        yield model
    finally:
        del model.condition
        Distribution.set_default_validate_args(validate)
        model.train(was)


class Encoder(nn.Module):
    """x [, label] -> (mean, *parameters) of q(z | x); names in ``output_names``."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model
        self.output_names = list(self._outputs(*example_inputs(model, "encoder", 2)))

    def _outputs(self, x: torch.Tensor, label: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        m = self.model
        if type(m).embed is not Model.embed:  # its own code (a VQ-VAE's chosen code vectors)
            return {"mean": m.embed(x, label)}
        q = m.encode(x, label)
        return {"mean": distribution_mean(q), **posterior_parameters(q)}

    def forward(self, x: torch.Tensor, label: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        return tuple(self._outputs(x, label).values())


class Decoder(nn.Module):
    """z [, label] -> (mean,), E[x | z] of the likelihood."""

    output_names = ["mean"]

    def __init__(self, model: Model):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, label: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        return (self.model.decode(z, label).mean,)


def input_names(model: Model, which: str) -> List[str]:
    return ["x" if which == "encoder" else "z"] + (["label"] if model.conditional else [])


def example_inputs(model: Model, which: str, batch: int, seed: int = 0) -> Tuple[torch.Tensor, ...]:
    """Inputs of the graph ``which`` for ``batch`` examples: uniform [0, 1) data (the images' range; a
    standardized table's typical values), standard-normal codes, labels cycling through the classes."""
    g = torch.Generator().manual_seed(seed)
    shape = model.data_shape if which == "encoder" else model.latent_shape
    first = torch.rand(batch, *shape, generator=g) if which == "encoder" else torch.randn(batch, *shape, generator=g)
    if which == "decoder":
        first = decoder_points(model, first)
    label = (torch.arange(batch) % model.num_classes,) if model.conditional else ()
    return (first.to(model.device), *label)


def decoder_points(model: Model, z: torch.Tensor) -> torch.Tensor:
    """Codes the decoder is meant to read: the encoder's means of data where the latent space is not all of
    R^D (the sphere, the simplex, the Poincaré ball, a VQ codebook), else ``z`` itself."""
    if model.can("latent_grid"):
        return z
    with torch.no_grad():
        x = torch.rand(z.shape[0], *model.data_shape, generator=torch.Generator().manual_seed(1))
        label = torch.arange(z.shape[0]) % model.num_classes if model.conditional else None
        return Encoder(model)(x.to(model.device), label)[0].detach()
