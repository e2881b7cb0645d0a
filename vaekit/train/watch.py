"""Non-finite losses noticed without a host synchronisation on every step.

Reading a GPU tensor's value in Python (``if not torch.isfinite(loss)``) waits for the GPU to
finish the step, so the loop cannot queue the next one. Instead each loss updates an
on-device record of the first step it was non-finite, read every ``every`` steps and at the
end of an epoch.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Dict, Iterator, Optional, Tuple

import torch

from .rollback import Diverged

NEVER = 2**62  # "no bad step yet"


class NonFiniteWatch:
    def __init__(self, every: int = 100):
        self.every = int(every)
        self._first: Dict[str, torch.Tensor] = {}   # loss name -> first bad step (NEVER if none), on device

    def note(self, name: str, loss: torch.Tensor, step: int) -> None:
        """Record ``loss`` of optimizer step ``step`` (counted from 1); three small device ops
        and no wait: the host never reads the loss here, so a GPU keeps running ahead."""
        first = self._first.get(name)
        if first is None:
            first = self._first[name] = torch.full((), NEVER, dtype=torch.long, device=loss.device)
        torch.minimum(first, torch.where(torch.isfinite(loss.detach()), NEVER, step), out=first)

    def due(self, step: int) -> bool:
        """Whether to read the record after optimizer step ``step``."""
        return step % self.every == 0

    def first_bad(self) -> Optional[Tuple[str, int]]:
        """(loss name, step) of the earliest non-finite loss since the last reset, or None.
        This synchronises (once)."""
        found = sorted((int(first), name) for name, first in self._first.items())
        found = [(name, step) for step, name in found if step != NEVER]
        return found[0] if found else None

    def reset(self) -> None:
        self._first.clear()

    def check(self, dist, epoch: int, agree: bool = True) -> None:
        """Raise Diverged at the first non-finite loss recorded (it synchronises once). With ``agree``,
        every rank of ``dist`` raises when any rank saw one (all must call it at the same step)."""
        bad = self.first_bad()
        if not (dist.any(bad is not None) if agree else bad is not None):
            return
        name, step = bad or ("main", None)  # None: another rank saw it
        raise Diverged(f"the {loss_name(name)} became nan or inf", epoch, step)


def check_weights(model: torch.nn.Module, epoch: int) -> None:
    """Never validate or save a broken model: the last step may have produced non-finite weights."""
    diverged([name for name, p in model.named_parameters() if not torch.isfinite(p).all()], epoch)


def check_row(row: dict) -> None:
    """An epoch's metrics row with a non-finite number is a divergence, not a row to save."""
    diverged([k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)], row["epoch"])


def diverged(bad: list, epoch: int) -> None:
    if bad:
        raise Diverged(f"training diverged (non-finite {', '.join(bad[:3])})", epoch)


def loss_name(watched: str) -> str:
    """"main" -> "loss", "discriminator" -> "discriminator loss", "main gradient" -> "gradient norm"."""
    group, _, gradient = watched.partition(" ")
    return ("" if group == "main" else f"{group} ") + ("gradient norm" if gradient else "loss")


@contextmanager
def distribution_checks(enabled: bool) -> Iterator[None]:
    """torch.distributions with argument validation on or off inside the block (the checks read
    tensor values, a host synchronisation each); the previous default is restored after."""
    before = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(enabled)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(before)


def unchecked_distributions():
    """What the trainer runs under: no argument checks (the non-finite watch stands in for them)."""
    return distribution_checks(False)
