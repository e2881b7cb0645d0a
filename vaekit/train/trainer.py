"""The generic training loop: any model, any registered objective, one optimizer per parameter
group, exact resume; no variant's name. Its position is data (``loop_state``, saved by ``snapshot``);
early stopping, rollback, the checkpoint cadence, stop requests and the weight average (``--ema``) are
collaborators of their own."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Dict, Optional

import torch

from .. import faults
from ..config import RunConfig
from ..data.batching import iterate_batches
from ..data.types import DataSplits
from ..device import resolve_device
from ..errors import VaekitError
from ..objectives import build_objective
from ..track import tracking
from ..models.helpers import evaluating, has_lazy
from . import snapshot
from .acceleration import FirstStepTimer, accelerated, check_settings
from .cadence import Cadence
from .distributed import Dist, zero_losses
from .early_stopping import EarlyStopping
from .ema import WeightAverage
from .loop_state import EpochSums, LoopState
from .optimizers import make_optimizers, step_all
from .preflight import check_val_metrics, preflight
from .progress import EpochProgress, epoch_summary
from .rollback import Diverged, Rollback, set_learning_rates
from .schedules import linear_warmup
from .stop import StopRequests
from .validation import end_of_epoch, eval_context
from .writer import RunWriter
from .watch import NonFiniteWatch, check_row, check_weights, unchecked_distributions


class Trainer:
    """Trains ``model`` on ``splits`` per ``config``, writing everything into ``run_dir``."""

    def __init__(self, model, splits: DataSplits, config: RunConfig, run_dir, progress: bool = True,
                 dist: Optional[Dist] = None):
        self.model, self.splits, self.config, self.tc = model, splits, config, config.train
        self.dist = dist or Dist()  # one process, or this rank of a torchrun run (train/distributed.py)
        self.progress = EpochProgress(progress and self.dist.is_writer, console=self.dist.console())
        self.run_dir = Path(run_dir)  # the writer also feeds the experiment trackers of --log, if any
        self.writer = RunWriter(run_dir, self.dist, tracking(config, splits, run_dir, self.progress.notice))
        self.objective = build_objective(config, len(splits.train))
        check_val_metrics(model, splits.val, self.tc.val_metrics, eval_context(self.splits, self.config))
        self.device = resolve_device(self.tc.device)
        self.precision_note = check_settings(self.tc, model, self.device)  # a bad one fails before writing
        self.loop, self.sums = LoopState(), EpochSums()
        self.shuffle_rng = torch.Generator().manual_seed(self.tc.seed)
        self.epoch_shuffle: Optional[torch.Tensor] = None  # the shuffle generator at the epoch's start
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.watch = NonFiniteWatch()
        self.stopping = EarlyStopping(*self.objective.monitor, self.tc.patience)
        one = self.dist.world == 1  # one process keeps the last good state on disk (train/rollback.py)
        self.rollback = Rollback(self.tc.nan_retries, self.tc.nan_lr_factor, self.run_dir if one else None)
        self.cadence = Cadence(self.tc.checkpoint_every, self.watch.every, self.dist.world)
        self.stops = StopRequests()
        self.compile_timer: Optional[FirstStepTimer] = None  # with --compile: how long compiling took

    # -- the loop --------------------------------------------------------------------------
    def fit(self, resume: bool = False, state: Optional[dict] = None):
        """Train until ``epochs``; with ``resume``, first restore ``state`` (default: read state.pt).

        While it trains, torch.distributions skips its argument checks (each one waits for the
        GPU); the non-finite watch stands in for them. ``--precision bf16`` autocasts the
        networks, ``--compile`` compiles them and ``--checkpoint-activations`` recomputes their blocks'
        activations in backward (train/acceleration.py)."""
        if self.precision_note and self.dist.is_writer:
            self.progress.notice(self.precision_note)
        with unchecked_distributions(), accelerated(self.model, self.tc, self.device), self.stops.listening(), \
                self.writer.training():
            train, val = self._setup()
            if not self._start(resume, state):
                return self._finished()
            steps = math.ceil(len(train) / self.tc.batch_size)
            self.compile_timer = FirstStepTimer() if self.tc.compile else None  # started here: setup excluded
            while self.loop.epoch < self.tc.epochs:
                try:
                    self._epoch(train, val, steps, warmup_steps=self.tc.warmup_epochs * steps)
                except Diverged as bad:
                    self._roll_back(bad)
                    continue
                if self.loop.stopped_early:
                    self.progress.notice(self.stopping.stopped(self.loop))
                    break
                if self.stops.agreed(self.dist):  # a signal during validation or saving: the epoch is saved
                    raise self._interruption()
        return self._finished()

    def _finished(self):
        """The trained model, holding the averaged weights with --ema (as model.safetensors does)."""
        self.average.keep_applied()
        return self.model

    def _setup(self):
        """The model and data on the device, lazy layers shaped, rank 0's weights everywhere, optimizers."""
        self.model.to(self.device)
        # in-memory data moves to the device once; streamed data moves each batch as it is read
        train, val = (s if self.device.type == "cpu" else s.to(self.device)
                      for s in (self.splits.train, self.splits.val))
        if has_lazy(self.model):  # a user's encoder may hold lazy layers: one batch gives them shapes
            x, y = next(iterate_batches(train, 2, batches=1))
            with evaluating(self.model):  # eval mode: no EMA codebook update from two examples
                self.model(x, y)
        self.model.fit_data(iterate_batches(train, 4096))  # a resumed run's state.pt then restores its own
        self.dist.broadcast_model(self.model)
        self.optimizers = make_optimizers(self.model.parameter_groups(), self.tc)
        self.average = WeightAverage(self.model, self.model.parameter_groups(), self.tc.ema, self.tc.ema_discriminator)
        if self.device.type == "cuda":  # same seed, same numbers on a GPU too (at some speed cost)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        return train, val

    def _start(self, resume: bool, state: Optional[dict]) -> bool:
        """Seed, or restore a resumed run; False when a resumed run has nothing left to do."""
        if not resume:
            torch.manual_seed(self.dist.rank_seed(self.tc.seed))
        else:
            self._restore(state)
            self.loop.stopped_early = self.stopping.exhausted(self.loop)  # a raised --patience goes on
            if self.loop.stopped_early:
                self.progress.notice(self.stopping.still_stopped(self.loop))
                return False
            if self.loop.epoch >= self.tc.epochs:
                self.progress.notice(f"the run has already trained {self.loop.epoch} epochs: nothing to do "
                                     f"(pass --epochs above {self.loop.epoch} to train on)")
            else:
                self._event("resumed")
        self.rollback.last_good.keep(self._state())  # where a non-finite loss before the first save goes back
        return True

    def _epoch(self, train, val, steps: int, warmup_steps: int) -> None:
        """One epoch (or the rest of one resumed mid-epoch): train, validate, save."""
        start = time.perf_counter() - self.loop.seconds
        try:
            train_terms = self._train_epoch(train, steps, warmup_steps, start)
        except (ValueError, RuntimeError):
            self.watch.check(self.dist, self.loop.epoch + 1, agree=False)  # a NaN weight may fail a later step
            raise
        self.watch.check(self.dist, self.loop.epoch + 1)
        check_weights(self.model, self.loop.epoch + 1)
        with self.average.applied():  # with --ema the prior is fitted, and validation reads, the averaged weights
            val_terms = end_of_epoch(self.model, self.objective, train, val, self.dist, self.tc,
                                     lambda: eval_context(self.splits, self.config))
        row = self.loop.epoch_row(linear_warmup(self.loop.step, warmup_steps), train_terms, val_terms,
                                  time.perf_counter() - start)
        check_row(row)
        self.loop.end_epoch()
        self.sums = EpochSums()
        self.writer.epoch(row, self.model, self.loop.epoch, self.stopping.observe(self.loop, val_terms), self.average)
        self._save_state()
        self.progress.log(epoch_summary(row, self.stopping.monitor))

    def _train_epoch(self, train, steps: int, warmup_steps: int, start: float) -> dict:
        self.model.train()
        self.epoch_shuffle = self.shuffle_rng.get_state()  # resumed mid-epoch, the state.pt restored it
        loop = self.loop
        with self.progress.epoch(loop.epoch + 1, self.tc.epochs, steps, done=loop.batch) as bar:
            for x, y in iterate_batches(train, self.tc.batch_size, shuffle=True, generator=self.shuffle_rng,
                                        shard=self.dist.shard, skip=loop.batch):
                b = x.shape[0]
                if not b:  # this rank's share of a last global batch smaller than the world: weight 0
                    self.optimize(zero_losses(self.optimizers), examples=0)
                    out = None
                else:
                    at = {"step": loop.step} if self.objective.needs_step else {}
                    out = self.objective(self.model, x, y, kl_weight=linear_warmup(loop.step, warmup_steps), **at)
                    self.optimize(out.losses, examples=b)
                    self.sums.add(out.named(), b)
                self.dist.after_step(self.model)
                loop.step, loop.batch = loop.step + 1, loop.batch + 1
                self.average.update(loop.step)
                faults.point("step")
                self._after_step(start)
                if out is not None:
                    bar.advance(out.loss.detach())
        return self.dist.sum_means(self.sums.sums, self.sums.n)

    def _after_step(self, start: float) -> None:
        """The non-finite watch, the compile timer, a mid-epoch checkpoint and a stop, as the cadence says."""
        plan = self.cadence.after(self.loop.step, lambda: self.stops.agreed(self.dist))
        if plan.read_watch or plan.save:
            self.watch.check(self.dist, self.loop.epoch + 1)
        if self.compile_timer is not None and self.compile_timer.done():
            self.progress.log(f"torch.compile: the first step took {self.compile_timer.seconds:.1f} s "
                              "(compiling the networks)")
        if plan.save:
            check_weights(self.model, self.loop.epoch + 1)
            self.loop.seconds = time.perf_counter() - start
            self._save_state()
        if plan.stop:
            raise self._interruption()

    def optimize(self, losses: Dict[str, torch.Tensor], examples: int = 1) -> None:
        """One step of every optimizer, each on its own loss (train/optimizers.py ``step_all``)."""
        step_all(self.optimizers, losses, watch=self.watch, dist=self.dist, step=self.loop.step + 1,
                 grad_clip=self.tc.grad_clip, examples=examples)

    def _roll_back(self, bad: Diverged) -> None:
        """Back to the last good state with lower learning rates, or stop when the retries are spent.
        Each rollback is a row of metrics.jsonl: {"event": "rollback", ...}."""
        good, done = self.rollback.last_good.copy(), self.loop.rollbacks
        if self.rollback.spent(done):
            self._event("diverged", reason=bad.what, at_epoch=bad.epoch, at_step=bad.step)
            raise VaekitError(self.rollback.give_up(bad, done, good, self.optimizers))
        rates = self.rollback.lowered(self.optimizers)
        self._restore(good)
        set_learning_rates(self.optimizers, rates)
        self.loop.rollbacks = done + 1
        self.watch.reset()
        self._event("rollback", reason=bad.what, at_epoch=bad.epoch, at_step=bad.step, lr=rates)
        self.progress.notice(self.rollback.retrying(bad, done + 1, good, self.optimizers))

    def _interruption(self):
        self._event("interrupted", signal=self.stops.name)
        return self.stops.interruption(self.loop.where(), self.run_dir, self.dist.world)

    def preflight(self) -> None:
        """Model, groups and objective checked together before anything is written (train/preflight.py)."""
        preflight(self.model, self.objective, self.config, self.splits.train)

    # -- the run directory -----------------------------------------------------------------
    def _state(self) -> dict:
        """Everything --resume needs; mid-epoch, the shuffle generator as the epoch began."""
        shuffle = self.epoch_shuffle if self.loop.batch else self.shuffle_rng.get_state()
        return snapshot.capture(self.loop, self.sums, shuffle, self.model, self.optimizers, self.dist, self.average)

    def _restore(self, state: Optional[dict]) -> None:
        state = self.writer.read_state() if state is None else state
        self.loop, self.sums = snapshot.restore(state, self.model, self.optimizers, self.shuffle_rng, self.dist,
                                                self.tc.seed, self.device, self.writer.state_path, self.average)
        self.writer.trim(self.loop.epoch)

    def _save_state(self) -> None:
        """state.pt, and the in-memory copy a rollback returns to. Mid-epoch only state.pt is written:
        model.safetensors stays the last completed epoch's."""
        state = self._state()  # on every rank: it gathers their random states
        self.writer.state(state)
        self.rollback.last_good.keep(state, self.writer.read_state if self.dist.world == 1 else None)

    def _event(self, event: str, **fields) -> None:
        self.writer.event(event, self.loop, **fields)

