"""An exponential moving average of the trained weights (``--ema DECAY``): Polyak averaging (Polyak &
Juditsky 1992, "Acceleration of stochastic approximation by averaging") in its exponential form, as
diffusers' ``EMAModel`` and latent diffusion's ``LitEma`` (Rombach et al. 2022) keep it.

After optimizer step t (counted from 1), every averaged parameter's copy becomes

    ema_t = d_t * ema_{t-1} + (1 - d_t) * w_t,    d_t = min(d, (1 + s) / (10 + s)),  s = t - 1,

with d_1 = 0 (the first step copies the weights). This is the decay warm-up of diffusers' EMAModel with
its defaults (``use_ema_warmup=False``, ``update_after_step=0``): early on the average forgets the random
initial weights quickly, so a short run's average is not mostly its initialization; after about
9 d / (1 - d) steps the decay is the constant d.

What is averaged: the parameters the optimizers train, except a ``discriminator`` group's (unless
``train.ema_discriminator``). Buffers (BatchNorm statistics, VQ-VAE EMA codebooks, fitted priors) are
not averaged: the model holds one copy, the raw model's, and the averaged weights use it as it is.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import torch

DISCRIMINATOR = "discriminator"


def decay_at(step: int, decay: float) -> float:
    """d_t of the module docstring: diffusers' EMAModel.get_decay with its default warm-up."""
    s = step - 1
    return 0.0 if s <= 0 else min(decay, (1 + s) / (10 + s))


class WeightAverage:
    """The averaged copies of ``model``'s trained parameters; does nothing when ``decay`` is None.

    The trainer calls :meth:`update` after each optimizer step, validates and saves within
    :meth:`applied`, and ``state.pt`` holds :meth:`state` beside the raw weights."""

    def __init__(self, model: torch.nn.Module, groups: Dict[str, List[torch.nn.Parameter]],
                 decay: Optional[float], discriminator: bool = False):
        self.decay = decay
        trained = {id(p) for name, params in groups.items() if discriminator or name != DISCRIMINATOR
                   for p in params}
        self.params = {name: p for name, p in model.named_parameters() if id(p) in trained} if decay else {}
        self.average = {name: p.detach().clone() for name, p in self.params.items()}

    @property
    def on(self) -> bool:
        return self.decay is not None

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the weights after optimizer step ``step`` (counted from 1)."""
        if not self.on:
            return
        d = decay_at(step, self.decay)
        for name, p in self.params.items():
            self.average[name].mul_(d).add_(p.detach(), alpha=1 - d)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the model holds the averaged weights; afterwards its raw weights again, bit for bit."""
        raw = {name: p.detach().clone() for name, p in self.params.items()}
        self._copy_in(self.average)
        try:
            yield
        finally:
            self._copy_in(raw)

    def keep_applied(self) -> None:
        """The model holds the averaged weights from now on (training is over)."""
        self._copy_in(self.average)

    @torch.no_grad()
    def _copy_in(self, weights: Dict[str, torch.Tensor]) -> None:
        for name, p in self.params.items():
            p.copy_(weights[name])

    def state(self) -> Optional[Dict[str, torch.Tensor]]:
        """The averaged weights for state.pt (on the CPU); None when off."""
        return {name: t.detach().cpu() for name, t in self.average.items()} if self.on else None

    def restore(self, saved: Optional[Dict[str, torch.Tensor]]) -> None:
        """The averaged weights saved by :meth:`state`; a KeyError when they do not fit this model."""
        if not self.on:
            return
        if saved is None:
            raise KeyError("ema (the averaged weights; the run was saved without --ema)")
        if set(saved) != set(self.average):
            raise KeyError(f"ema: averaged weights of {sorted(set(saved) ^ set(self.average))[:3]}")
        for name, t in self.average.items():
            t.copy_(saved[name])
