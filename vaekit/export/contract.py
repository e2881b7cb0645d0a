"""export.json: what the exported graphs take and give, how raw data becomes their input, and the latent prior.

The prior is written as plain numbers in one of a few families a numpy program can sample
(``vaekit.export.onnx_backend`` does): ``gaussian`` (loc and a diagonal ``scale`` or a ``scale_tril``),
``mixture`` of diagonal Gaussians, ``concrete`` (Gumbel-softmax groups), ``one-hot``, ``uniform-sphere``,
``codebook`` (a categorical code per position and stage, the code vector the sum of each stage's table
row, laid out as the decoder reads it), ``wrapped-normal`` (on the Poincaré ball), and ``concat`` of several;
anything else is ``unsupported`` with the reason.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.distributions import Distribution, Independent, MixtureSameFamily, MultivariateNormal, Normal

from ..models import Model


MAX_TABLE = 1 << 22  # numbers in a quantizer's code tables that export.json writes out


def _list(t: torch.Tensor) -> list:
    return t.detach().cpu().double().tolist()


def distribution_spec(p: Distribution) -> dict:
    """A prior distribution over one flattened code, as numbers; ``unsupported`` where none of the families fits."""
    from ..distributions.gumbel import GroupedConcrete
    from ..distributions.poincare import WrappedNormal
    from ..distributions.vmf import HypersphericalUniform

    base = p.base_dist if isinstance(p, Independent) else p
    if isinstance(base, Normal):
        return {"kind": "gaussian", "loc": _list(base.loc.flatten()), "scale": _list(base.scale.flatten())}
    if isinstance(p, MultivariateNormal):
        return {"kind": "gaussian", "loc": _list(p.loc), "scale_tril": _list(p.scale_tril)}
    if isinstance(p, MixtureSameFamily) and isinstance(p.component_distribution.base_dist, Normal):
        comp = p.component_distribution.base_dist
        return {"kind": "mixture", "logits": _list(p.mixture_distribution.logits),
                "loc": _list(comp.loc.flatten(1)), "scale": _list(comp.scale.flatten(1))}
    if isinstance(p, GroupedConcrete):
        return {"kind": "concrete", "logits": _list(p.logits), "sizes": list(p.sizes), "temperature": p.temperature}
    if isinstance(p, HypersphericalUniform):
        return {"kind": "uniform-sphere", "dim": p.m}
    if isinstance(p, WrappedNormal):
        return {"kind": "wrapped-normal", "loc": _list(p.loc.flatten()), "scale": _list(p.scale.flatten()),
                "curvature": p.c}
    return {"kind": "unsupported", "why": f"its {type(p).__name__} prior has no sampler outside torch; sample "
                                          "with vaekit (vaekit sample RUN)"}


@torch.no_grad()
def prior_spec(model: Model) -> dict:
    """The prior ``model.prior_sample`` draws from, over the flattened code (latent_dim,)."""
    from ..models.jointvae import JointVAE
    from ..models.ladder import LadderVAE
    from ..models.quantized import QuantizedModel

    if isinstance(model, QuantizedModel):
        tables = model.codebook.tables()
        if tables.numel() > MAX_TABLE:
            return {"kind": "unsupported", "why": f"its {tuple(tables.shape)} code tables are too large to write "
                                                  "down; sample with vaekit (vaekit sample RUN)"}
        return {"kind": "codebook", "logits": _list(model.prior_logits), "tables": _list(tables),
                "map_shape": None if model.map_shape is None else [int(v) for v in model.map_shape]}
    if isinstance(model, JointVAE):
        return {"kind": "concat", "parts": [distribution_spec(model.priors[0]())] + [
            {"kind": "one-hot", "categories": int(k)} for k in model.categories]}
    if isinstance(model, LadderVAE):
        return distribution_spec(model._top_prior(1))  # (1, D): its loc and scale flatten to (D,)
    if type(model).prior_sample is not Model.prior_sample:
        return {"kind": "unsupported", "why": f"the {model.name} model draws its codes in its own way"}
    return distribution_spec(model.prior())


def transform_spec(config, info) -> dict:
    """How raw data becomes the encoder's ``x`` (and the decoder's mean goes back)."""
    if info.kind == "image":
        c, h, w = info.shape
        return {"kind": "image", "shape": [int(c), int(h), int(w)], "layout": "channels first (C, H, W)",
                "scale": "float32 in [0, 1] (8-bit pixels / 255; the data's own maximum otherwise, as vaekit loads "
                         "it); the decoder's mean is in [0, 1] too",
                "channels": {1: "grey", 3: "RGB"}.get(int(c), f"{c} channels"),
                "image_size": config.data.image_size or [int(h), int(w)]}
    spec = {"kind": info.kind, "shape": [int(s) for s in info.shape], "columns": info.columns}
    if info.mean is not None:
        spec.update(standardize="x = (raw - mean) / std per column; raw = x * std + mean for the decoder's mean",
                    mean=list(info.mean), std=list(info.std))
    return spec


def io_spec(name: str, shape, dtype: str) -> dict:
    return {"name": name, "shape": ["batch", *[int(s) for s in shape]], "dtype": dtype}


def posterior_note(model: Model, outputs) -> Optional[str]:
    """Where ``var`` is missing from the encoder's outputs, why."""
    if "var" in outputs:
        return None
    if model.deterministic_posterior:
        return "the posterior is a point: the variance is 0"
    return ("this posterior has no closed-form variance; its outputs after mean are its own parameters "
            f"({', '.join(outputs[1:])})")
