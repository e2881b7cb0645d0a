"""Early stopping on the objective's monitored validation value, and which epoch is the best."""
from __future__ import annotations

from typing import Dict, Optional

from .loop_state import LoopState


class EarlyStopping:
    """Watches ``monitor`` (``mode`` "min" or "max"); stops after ``patience`` epochs without a new
    best (never when ``patience`` is None). Its record lives in the :class:`LoopState`, so it
    resumes with the run."""

    def __init__(self, monitor: str, mode: str, patience: Optional[int]):
        self.monitor, self.mode, self.patience = monitor, mode, patience

    def observe(self, loop: LoopState, val_terms: Dict[str, float]) -> bool:
        """Record epoch ``loop.epoch``'s validation terms; True when it is the best so far."""
        if not val_terms:
            return False
        value = val_terms[self.monitor]
        loss = -value if self.mode == "max" else value
        if loop.best_val is None or loss < loop.best_val:
            loop.best_val, loop.best_epoch, loop.bad_epochs = loss, loop.epoch, 0
            return True
        loop.bad_epochs += 1
        loop.stopped_early = self.exhausted(loop)
        return False

    def exhausted(self, loop: LoopState) -> bool:
        """Whether the patience is spent (a raised ``patience`` on resume lets a stopped run go on)."""
        return self.patience is not None and loop.bad_epochs >= self.patience

    def stopped(self, loop: LoopState) -> str:
        return (f"early stopping: no validation improvement for {self.patience} epochs "
                f"(best epoch {loop.best_epoch})")

    def still_stopped(self, loop: LoopState) -> str:
        """What a resumed run that already stopped early says."""
        return f"run stopped early at epoch {loop.epoch}; raise --patience to go on"
