"""Back to the last good state after a non-finite loss, with a lower learning rate.

Large runs recover from loss spikes this way: OPT-175B's logbook (Zhang et al. 2022, "OPT: Open
Pre-trained Transformer Language Models", sec. 2.5) restarted from an earlier checkpoint with a
lower learning rate. The good state is the last one saved (or the start of training), kept in
memory so every process under torchrun has it without reading the disk.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional

import torch

from .loop_state import LoopState


class Diverged(Exception):
    """A non-finite loss, gradient or weight; ``what`` says which, ``epoch``/``step`` where."""

    def __init__(self, what: str, epoch: int, step: Optional[int] = None):
        super().__init__(what)
        self.what, self.epoch, self.step = what, epoch, step

    def where(self) -> str:
        return f"at epoch {self.epoch}" + (f", step {self.step}" if self.step is not None else "")


class LastGood:
    """A private copy of the last good training state (tensors copied, so training cannot change it)."""

    def __init__(self):
        self.state: Optional[dict] = None

    def keep(self, state: dict) -> None:
        self.state = copy.deepcopy(state)

    def copy(self) -> dict:
        """A copy to restore from: loading a state may share its tensors (an optimizer keeps them)."""
        return copy.deepcopy(self.state)


def learning_rates(optimizers: Dict[str, torch.optim.Optimizer]) -> List[float]:
    return [float(g["lr"]) for opt in optimizers.values() for g in opt.param_groups]


def set_learning_rates(optimizers: Dict[str, torch.optim.Optimizer], rates: List[float]) -> None:
    groups = [g for opt in optimizers.values() for g in opt.param_groups]
    for group, lr in zip(groups, rates, strict=True):
        group["lr"] = lr


class Rollback:
    """Up to ``retries`` times, training goes back to the last good state with every learning rate
    multiplied by ``lr_factor``; after that it stops with an error that says what was kept."""

    def __init__(self, retries: int, lr_factor: float):
        self.retries, self.lr_factor = int(retries), float(lr_factor)
        self.last_good = LastGood()

    def spent(self, rollbacks: int) -> bool:
        return rollbacks >= self.retries

    def lowered(self, optimizers: Dict[str, torch.optim.Optimizer]) -> List[float]:
        return [lr * self.lr_factor for lr in learning_rates(optimizers)]

    def give_up(self, bad: Diverged, rollbacks: int, good: dict, optimizers) -> str:
        """The message when the retries are spent; ``good`` is the state that stays on disk."""
        tried = (f" after {rollbacks} rollback{'s' * (rollbacks != 1)}, with the learning rate now "
                 f"{rates_text(optimizers)}" if rollbacks else "")
        saved = (f"The last good checkpoint ({position(good)}) is kept in the run directory"
                 if good["epoch"] or good.get("batch") else "Nothing was saved yet")
        return f"{bad.what} {bad.where()}{tried}; try a lower --lr or --grad-clip 1.0. {saved}"

    def retrying(self, bad: Diverged, rollbacks: int, good: dict, optimizers) -> str:
        return (f"{bad.what} {bad.where()}: back to the last good state ({position(good)}) with the learning "
                f"rate lowered to {rates_text(optimizers)} (retry {rollbacks} of {self.retries})")


def position(state: dict) -> str:
    """Where a saved state is, in words."""
    return LoopState.from_state(state).where()


def rates_text(optimizers: Dict[str, torch.optim.Optimizer]) -> str:
    return ", ".join(f"{lr:.3g}" for lr in dict.fromkeys(learning_rates(optimizers)))
