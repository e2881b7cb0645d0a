"""A progress bar with the live loss (rich), and per-epoch summary lines."""
from __future__ import annotations

import math
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class EpochProgress:
    """Shows one bar per epoch; silent when ``enabled`` is False."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._progress = None
        self._task = None
        self._steps = 0

    @contextmanager
    def epoch(self, epoch: int, epochs: int, steps: int, done: int = 0):
        if not self.enabled:
            yield self
            return
        self._progress = Progress(
            TextColumn(f"epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
            console=self.console, transient=True, disable=not self.console.is_terminal,
        )
        with self._progress:
            self._task = self._progress.add_task("train", total=steps, completed=done, loss="-")
            yield self
        self._progress = None

    def advance(self, loss) -> None:
        """One step done; the shown loss is refreshed every 10 steps (reading it syncs a GPU)."""
        if self._progress is None:
            return
        self._steps += 1
        fields = {"loss": f"{float(loss):.3f}"} if self._steps % 10 == 1 else {}
        self._progress.update(self._task, advance=1, **fields)

    def notice(self, message: str) -> None:
        """Something the user must know even without a progress display (early stopping)."""
        self.console.print(message, highlight=False)

    def log(self, message: str) -> None:
        if self.enabled:
            self.console.print(message, highlight=False)


def epoch_summary(row: dict, monitor: str) -> str:
    """The line printed after each epoch."""
    keys = [monitor] + [k for k in ("elbo", "recon", "kl") if k != monitor]
    text = f"epoch {row['epoch']:>3}  train {monitor} {row.get(f'train_{monitor}', math.nan):.2f}"
    if f"val_{monitor}" in row:
        text += "  val " + ", ".join(f"{k} {row[f'val_{k}']:.2f}" for k in keys if f"val_{k}" in row)
    return text + f"  {row['seconds']:.1f}s"
