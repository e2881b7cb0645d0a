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
