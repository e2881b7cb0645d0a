"""What happens after an optimizer step: read the non-finite watch, save a mid-epoch checkpoint, stop."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class AfterStep:
    read_watch: bool   # read the on-device record of non-finite losses (a host synchronisation)
    save: bool         # write state.pt here, mid-epoch
    stop: bool         # a signal asked to stop: save, then stop


class Cadence:
    """Reads the watch every ``watch_every`` steps and checkpoints every ``checkpoint_every`` steps
    (never when None or 0). One process looks at stop requests after every step; under torchrun
    (``world`` > 1) only when the watch is read, the step at which every rank agrees."""

    def __init__(self, checkpoint_every: Optional[int], watch_every: int, world: int = 1):
        self.checkpoint_every, self.watch_every, self.world = checkpoint_every, int(watch_every), world

    def after(self, step: int, asked_to_stop: Callable[[], bool]) -> AfterStep:
        """The plan after optimizer step ``step`` (counted from 1). ``asked_to_stop`` is called only
        where a stop may happen: under torchrun it is a collective every rank must join."""
        read = step % self.watch_every == 0
        stop = (self.world == 1 or read) and asked_to_stop()
        every = self.checkpoint_every
        return AfterStep(read_watch=read, save=stop or bool(every and step % every == 0), stop=stop)
