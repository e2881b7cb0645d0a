"""What every objective is and returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import torch

from ..contract.keys import layer_key


@dataclass
class LossOutput:
    """``losses``: the scalar each optimizer minimises, by parameter-group name (``"main"``, ...).
    ``terms``: per-example means in nats (``elbo``, ``recon``, ``kl``, ...), for logs and validation.
    ``output``: the model's ``ModelOutput`` the losses came from, where the objective passes it on: a term
    added on top (a discriminator's, objectives/adversarial.py) reads the reconstruction there.
    """

    losses: Dict[str, torch.Tensor]
    terms: Dict[str, torch.Tensor] = field(default_factory=dict)
    output: Any = None

    def __post_init__(self) -> None:
        self.terms = {k: v.detach() for k, v in self.terms.items()}  # for logs: they carry no graph

    @property
    def loss(self) -> torch.Tensor:
        """The main loss."""
        return self.losses["main"]

    def named(self) -> Dict[str, torch.Tensor]:
        """The terms plus the losses, named ``loss`` (the main one) and ``loss_<group>`` (the others):
        what training logs, validation averages and early stopping may monitor."""
        losses = {("loss" if name == "main" else f"loss_{name}"): v for name, v in self.losses.items()}
        return {**self.terms, **losses}


class Objective:
    """Base of every objective: ``objective(model, x, c, kl_weight) -> LossOutput``.

    ``monitor`` names the term early stopping and ``best.safetensors`` follow on the
    validation data, and whether higher (``"max"``) or lower (``"min"``) is better.
    """

    monitor: Tuple[str, str] = ("elbo", "max")
    # True: the trainer also passes ``step=`` (optimizer steps done so far) when it trains (a discriminator
    # that starts at a step); calls outside training (validation, checks) give none
    needs_step: bool = False

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        raise NotImplementedError


def layer_terms(kls) -> Dict[str, torch.Tensor]:
    """``kl_1``, ``kl_2``, ... (top layer first) for a model with more than one stochastic layer."""
    if len(kls) < 2:
        return {}
    return {layer_key(i + 1): kl.mean() for i, kl in enumerate(kls)}
