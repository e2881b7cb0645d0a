"""Ctrl-C and SIGTERM during training: finish the step, save a checkpoint there, then stop.

The handlers only note the signal; the training loop reads the note after each optimizer step
(under torchrun the processes agree on it when the non-finite watch is read, so they all stop
at the same step), saves, and raises :class:`vaekit.errors.Interrupted`. The same signal again
stops at once (KeyboardInterrupt), keeping the last checkpoint on disk.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

from ..errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    def __init__(self):
        self.signal: Optional[int] = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signal == signal.SIGINT else signal.Signals(self.signal).name

    def agreed(self, dist) -> bool:
        """Whether a stop was asked; under torchrun every rank asks at the same step and they agree."""
        return dist.any(self.requested)

    def interruption(self, where: str, run_dir, world: int = 1) -> Interrupted:
        """What stops training once the state is saved (``where``, in words): the resume command."""
        nproc = f" --nproc {world}" if world > 1 else ""
        return Interrupted(f"interrupted by {self.name}; the run is saved ({where}): continue with "
                           f"`vaekit train --out {run_dir} --resume{nproc}`")

    def _handle(self, signum, frame) -> None:
        if signum == self.signal:
            raise KeyboardInterrupt  # the same signal twice (Ctrl-C pressed again): stop now
        # torchrun's launcher answers Ctrl-C with SIGTERM to its workers: still one request
        self.signal = self.signal or signum

    @contextmanager
    def listening(self) -> Iterator["StopRequests"]:
        """Handlers installed inside the block (only the main thread can have them), then the
        previous ones again."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in SIGNALS}
        for s in SIGNALS:
            signal.signal(s, self._handle)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler if handler is not None else signal.SIG_DFL)
