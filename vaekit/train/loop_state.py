"""Where the training loop is, as data: the counters ``state.pt`` saves and ``--resume`` reads back,
and the running sums of the epoch in progress."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Dict, List, Optional, Tuple

import torch


# what vaekit 0.1 already saved; the other fields came later and default when absent
REQUIRED = ("epoch", "step", "best_val", "best_epoch", "bad_epochs", "stopped_early")


@dataclass
class LoopState:
    """The loop position. ``state.pt`` holds its :func:`asdict` beside the weights, optimizers and
    random states; older files that lack a field (``batch``, ``seconds``, ``rollbacks``) resume
    with its default."""

    epoch: int = 0                    # completed epochs
    step: int = 0                     # optimizer steps
    batch: int = 0                    # batches done in the epoch in progress (0: at an epoch boundary)
    seconds: float = 0.0              # training seconds of the epoch in progress
    best_val: Optional[float] = None  # best monitored validation value, as a loss (lower is better)
    best_epoch: int = 0
    bad_epochs: int = 0               # epochs since the best one
    stopped_early: bool = False
    rollbacks: int = 0                # times training went back to the last good state

    def to_state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> "LoopState":
        """The position saved in ``state``; a KeyError names a field that every version saves."""
        missing = [name for name in REQUIRED if name not in state]
        if missing:
            raise KeyError(missing[0])
        loop = cls()
        for f in fields(cls):
            if f.name in state:  # numbers come back as the field's type (best_val may be None)
                value = state[f.name]
                setattr(loop, f.name, value if f.default is None else type(f.default)(value))
        return loop

    def epoch_row(self, kl_weight: float, train: dict, val: dict, seconds: float) -> dict:
        """The metrics.jsonl row of the epoch just trained (before :meth:`end_epoch`)."""
        return {"epoch": self.epoch + 1, "step": self.step, "kl_weight": kl_weight,
                **{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items()},
                "seconds": seconds}

    def end_epoch(self) -> None:
        """An epoch is complete: the next starts at its first batch, with its own clock."""
        self.epoch, self.batch, self.seconds = self.epoch + 1, 0, 0.0

    def where(self) -> str:
        """Where this position is, in words, counting completed epochs as metrics.jsonl does."""
        if not (self.epoch or self.batch):
            return "the start"
        text = f"after {_count(self.epoch, 'epoch', 'epochs')}"
        if self.batch:
            text += f" and {_count(self.batch, 'batch', 'batches')}"
        return f"{text}, step {self.step}"

    def event_fields(self) -> dict:
        """The position in an event row of metrics.jsonl: ``batch`` only mid-epoch."""
        return {"epoch": self.epoch, "step": self.step, **({"batch": self.batch} if self.batch else {})}


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


class EpochSums:
    """Per-example sums of an epoch's training terms, kept as device tensors (no GPU sync per step)."""

    def __init__(self):
        self.sums: Dict[str, torch.Tensor] = {}
        self.n = 0

    def add(self, terms: Dict[str, torch.Tensor], b: int) -> None:
        """Terms that are means over a batch of ``b`` examples."""
        self.n += b
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.detach() * b

    def saved(self) -> Tuple[dict, int]:
        """This rank's sums on the CPU, for state.pt."""
        return {k: v.detach().cpu() for k, v in self.sums.items()}, self.n

    @classmethod
    def restored(cls, saved: Optional[List[tuple]], rank: int, world: int, device) -> "EpochSums":
        """This rank's sums from a mid-epoch state (one ``(sums, n)`` per rank). Saved by another number of
        processes, rank 0 takes them all: the epoch's train_* means stay right, and the model never
        depended on them."""
        out = cls()
        if not saved:
            return out
        if len(saved) != world:
            total: Dict[str, torch.Tensor] = {}
            for sums, _ in saved:
                for k, v in sums.items():
                    total[k] = total.get(k, 0.0) + v
            saved = [(total, sum(n for _, n in saved))] + [({}, 0)] * world
        sums, n = saved[rank]
        out.sums, out.n = {k: v.to(device) for k, v in sums.items()}, int(n)
        return out
