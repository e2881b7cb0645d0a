"""What training writes into the run directory, in the order that keeps a crash harmless: the
metrics row, then the weights, then ``state.pt`` (resume trims rows past the state's epoch).
Under torchrun only rank 0 writes."""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path

from .. import rundir
from .distributed import Dist
from .ema import WeightAverage


class RunWriter:
    """``trackers``: the experiment trackers (vaekit/track/) that see every row and event too, or None."""

    def __init__(self, run_dir, dist: Dist, trackers=None):
        self.run_dir, self.dist = Path(run_dir), dist
        self.trackers = trackers if dist.is_writer else None

    @contextmanager
    def training(self):
        """training.json for the block's duration (rank 0), so readers know the run is training; the
        trackers are closed when it ends."""
        with rundir.training(self.run_dir) if self.dist.is_writer else nullcontext():
            try:
                yield
            finally:
                if self.trackers is not None:
                    self.trackers.close()

    def epoch(self, row: dict, model, epoch: int, improved: bool, average: WeightAverage) -> None:
        """A completed epoch: its metrics row, model.safetensors, and best.safetensors when ``improved``.
        With --ema (``average.on``) those two hold the averaged weights, and raw.safetensors the raw ones."""
        if self.dist.is_writer:
            rundir.append_metrics(self.run_dir, row)
            meta = {"epoch": str(epoch)}
            if average.on:
                rundir.save_weights(self.run_dir / rundir.RAW, model, meta)
            with average.applied():
                rundir.save_weights(self.run_dir / rundir.WEIGHTS, model, meta)
                if improved:
                    rundir.save_weights(self.run_dir / rundir.BEST, model, meta)
                if self.trackers is not None:  # the images the trackers get are of the weights saved
                    self.trackers.epoch(row, model, epoch)

    def state(self, state: dict) -> None:
        if self.dist.is_writer:
            rundir.save_state(self.run_dir / rundir.STATE, state)

    def event(self, event: str, loop, **fields) -> None:
        """A row of metrics.jsonl for an event (resumed, rollback, interrupted, diverged)."""
        if self.dist.is_writer:
            rundir.append_event(self.run_dir, event, **loop.event_fields(), **fields)
            if self.trackers is not None:
                self.trackers.event(event, loop.step)

    def read_state(self) -> dict:
        return rundir.load_state(self.state_path)

    def trim(self, epoch: int) -> None:
        """Rows past ``epoch``, written after the state being resumed, are dropped."""
        if self.dist.is_writer:
            rundir.trim_metrics(self.run_dir, epoch)

    @property
    def state_path(self) -> Path:
        return self.run_dir / rundir.STATE
