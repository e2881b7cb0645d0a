"""Non-finite losses noticed without a host synchronisation on every step.

Reading a GPU tensor's value in Python (``if not torch.isfinite(loss)``) waits for the GPU to
finish the step, so the loop cannot queue the next one. Instead each loss updates an
on-device record of the first step it was non-finite, read every ``every`` steps and at the
end of an epoch.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, Optional, Tuple

import torch

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
