"""Back to the last good state after a non-finite loss, with a lower learning rate.

Large runs recover from loss spikes this way: OPT-175B's logbook (Zhang et al. 2022, "OPT: Open
Pre-trained Transformer Language Models", sec. 2.5) restarted from an earlier checkpoint with a
lower learning rate. The good state is the last one saved (or the start of training): in one process
read back from state.pt (or, before the first save, from a temporary file), under torchrun kept in memory
so every process has it without reading the disk (:class:`LastGood`).
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from ..errors import VaekitError
from .loop_state import LoopState


class Diverged(Exception):
    """A non-finite loss, gradient or weight; ``what`` says which, ``epoch``/``step`` where."""

    def __init__(self, what: str, epoch: int, step: Optional[int] = None):
        super().__init__(what)
        self.what, self.epoch, self.step = what, epoch, step

    def where(self) -> str:
        return f"at epoch {self.epoch}" + (f", step {self.step}" if self.step is not None else "")


class LastGood:
    """A private copy of the last good training state, so training cannot change it. Where this process has just
    written that state to a file (state.pt), ``keep(state, reread)`` copies nothing and a rollback reads the file
    back; otherwise the copy goes to an unnamed temporary file in ``folder`` (gone once closed or when the process
    ends), or, without a folder (each rank under torchrun, which writes no state.pt of its own) or when that
    write fails, stays in memory. In memory it is the size of the weights and the optimizer's state: 0.26 GB
    for the resnet recipe's 21 M parameters and Adam's two moments, held through every later step."""

    def __init__(self, folder: Optional[Path] = None):
        self.folder = folder
        self.state: Optional[dict] = None
        self.file = None  # the temporary file holding the copy
        self.reread: Optional[Callable[[], dict]] = None
        self.position: Optional[tuple] = None

    def keep(self, state: dict, reread: Optional[Callable[[], dict]] = None) -> None:
        """``reread``: reads back the file that ``state`` was just written to, by this process."""
        self.close()
        if reread is not None:
            self.reread, self.position = reread, where(state)
            return
        if self.folder is not None:
            try:
                self.file = tempfile.TemporaryFile(dir=self.folder, prefix=".last-good-")
                torch.save(state, self.file)
                return
            except (OSError, RuntimeError):  # a full or read-only disk: memory then
                self.close()
        self.state = copy.deepcopy(state)

    def copy(self) -> dict:
        """A copy to restore from: loading a state may share its tensors (an optimizer keeps them)."""
        if self.reread is not None:
            state = self.reread()
            if where(state) != self.position:
                raise VaekitError(f"cannot go back to the last good training state: the file it was saved to now "
                                  f"holds another one ({position(state)}); it was replaced while training ran")
            return state
        if self.file is not None:
            self.file.seek(0)
            return torch.load(self.file, weights_only=True)
        return copy.deepcopy(self.state)

    def close(self) -> None:
        """Drops the copy (and its file)."""
        if self.file is not None:
            self.file.close()
        self.state = self.file = self.reread = None


def where(state: dict) -> tuple:
    loop = LoopState.from_state(state)
    return loop.epoch, loop.batch, loop.step


def learning_rates(optimizers: Dict[str, torch.optim.Optimizer]) -> List[float]:
    return [float(g["lr"]) for opt in optimizers.values() for g in opt.param_groups]


def set_learning_rates(optimizers: Dict[str, torch.optim.Optimizer], rates: List[float]) -> None:
    groups = [g for opt in optimizers.values() for g in opt.param_groups]
    for group, lr in zip(groups, rates, strict=True):
        group["lr"] = lr


class Rollback:
    """Up to ``retries`` times, training goes back to the last good state with every learning rate
    multiplied by ``lr_factor``; after that it stops with an error that says what was kept."""

    def __init__(self, retries: int, lr_factor: float, folder: Optional[Path] = None):
        self.retries, self.lr_factor = int(retries), float(lr_factor)
        self.last_good = LastGood(folder)

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
