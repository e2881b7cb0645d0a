"""The contract between a model and everything that reads it (objectives, metrics, plots).

A model's ``forward(x, c)`` returns a :class:`ModelOutput`; the shared maths in
:mod:`vaekit.contract.bounds` turns it into ELBO terms and importance weights for any model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

import torch
from torch.distributions import Distribution


@dataclass
class Latent:
    """One stochastic layer: its posterior, the sample drawn from it, and its prior.

    ``prior`` may depend on the layer above (a ladder VAE's top-down prior) or on learned
    inputs (VampPrior). Shapes: ``q`` and ``prior`` have batch (B,) and event = one example's
    latent; ``z`` is (B, *event) and carries the reparameterization gradient where q has one.
    """

    q: Distribution
    z: torch.Tensor
    prior: Distribution


@dataclass
class ModelOutput:
    """``px``: p(x given z), batch (B,), event = data shape, so ``px.log_prob(x)`` is (B,).
    ``latents``: one :class:`Latent` per stochastic layer, top to bottom.
    ``extras``: what one structure needs and others don't (a VQ commitment term ...), by name.
    """

    px: Distribution
    latents: List[Latent]
    extras: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    """What a model can do; plots, metrics and commands check these before they run."""

    sample: bool = True            # draw new data (decode z from the prior)
    encode: bool = True            # a latent point per example: latent maps, `vaekit encode`
    posterior_variance: bool = True  # a Gaussian posterior with a variance: `vaekit encode --variance`
    latent_grid: bool = True       # decode a grid of continuous latent values: the manifold plot
    likelihood: bool = True        # ELBO and importance-sampled log p(x)
    export: bool = True            # encoder and decoder as ONNX / TorchScript / torch.export graphs
