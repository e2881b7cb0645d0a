"""The generic training loop: any model, any registered objective, one optimizer per
parameter group, exact resume. It contains no variant's name."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Dict, Optional

import torch

from .. import faults, rundir
from .. import objectives as _objectives  # noqa: F401  (registers objectives)
from ..config import RunConfig
from ..data.batching import iterate_batches
from ..data.types import DataSplits
from ..device import resolve_device
from ..errors import Interrupted, VaekitError
from ..evaluate import EvalContext, compute_metrics
from ..models.helpers import evaluating, has_lazy
from ..registry import METRICS, OBJECTIVES
from .acceleration import FirstStepTimer, check_compile, check_precision, compiled_networks, network_precision
from .distributed import Dist, zero_losses
from .optimizers import make_optimizers
from .progress import EpochProgress
from .rollback import Diverged, LastGood, learning_rates, set_learning_rates
from .schedules import linear_warmup
from .stop import StopRequests
from .watch import NonFiniteWatch, unchecked_distributions


def build_objective(config: RunConfig, dataset_size: Optional[int] = None):
    """The configured objective; one that names ``dataset_size`` in its constructor (beta-TC's
    minibatch-weighted sampling) is given the number of training examples."""
    part = config.train.objective
    context = {} if dataset_size is None else {"dataset_size": int(dataset_size)}
    return OBJECTIVES.build(part.name, part.args, where="the objective", **context)


class Trainer:
    """Trains ``model`` on ``splits`` per ``config``, writing everything into ``run_dir``."""

    def __init__(self, model, splits: DataSplits, config: RunConfig, run_dir, progress: bool = True,
                 dist: Optional[Dist] = None):
        self.model, self.splits, self.config = model, splits, config
        self.run_dir = Path(run_dir)
        self.tc = config.train
        self.objective = build_objective(config, len(splits.train))
        self.monitor, self.mode = self.objective.monitor
        for m in self.tc.val_metrics:  # an unknown metric or option fails before anything is written
            reason = METRICS.build(m.name, m.args, where="the validation metric").unavailable(
                model, splits.val, self.eval_context())
            if reason:
                raise VaekitError(f"train.val_metrics: {reason}")
        self.dist = dist or Dist()  # one process, or this rank of a torchrun run (train/distributed.py)
        self.progress = EpochProgress(progress and self.dist.is_writer, console=self.dist.console())
        self.device = resolve_device(self.tc.device)
        self.precision_note = check_precision(self.tc.precision, self.device)  # a bad name fails before writing
        if self.tc.compile:
            check_compile(self.device)
        self.shuffle_rng = torch.Generator().manual_seed(self.tc.seed)
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.epoch = 0           # completed epochs
        self.step = 0            # optimizer steps
        self.best_val: Optional[float] = None   # best monitored value, as a loss (lower is better)
        self.best_epoch = 0
        self.bad_epochs = 0
        self.stopped_early = False
        self.watch = NonFiniteWatch()
        self.compile_timer: Optional[FirstStepTimer] = None  # with --compile: how long compiling took
        # where the current epoch is: batches done, the shuffle generator at its start, the running sums
        self.batch, self.epoch_shuffle, self.sums, self.n, self.seconds = 0, None, {}, 0, 0.0
        self.rollbacks = 0       # times training went back to the last good state (train.nan_retries)
        self.last_good = LastGood()
        self.stops = StopRequests()

    # -- state ---------------------------------------------------------------------------
    def _state(self) -> dict:
        """Everything --resume needs. Taken mid-epoch (``batch`` > 0), ``shuffle_rng`` is the generator
        at the epoch's start, so the same permutation is drawn again and its first ``batch`` skipped."""
        return {
            "epoch": self.epoch, "step": self.step, "batch": self.batch,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            # the weights (and buffers such as EMA codebooks) again, so state.pt alone is a resume point
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "torch_rng": torch.get_rng_state(),
            "shuffle_rng": self.epoch_shuffle if self.batch else self.shuffle_rng.get_state(),
            "rank_rngs": self.dist.gather_rng(),  # every rank's, under torchrun (None for one process)
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            # the epoch's running sums of every rank (its train_* metrics), and its seconds so far
            "sums": self.dist.gather(({k: v.detach().cpu() for k, v in self.sums.items()}, self.n)),
            "seconds": self.seconds,
            "best_val": self.best_val, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early, "rollbacks": self.rollbacks,
        }

    def _restore(self, state: Optional[dict]) -> None:
        if state is None:
            state = rundir.load_state(self.run_dir / rundir.STATE)
        try:
            self.model.load_state_dict({k: v.to(self.device) for k, v in state["model"].items()})
            saved = state["optimizers"] if "optimizers" in state else {"main": state["optimizer"]}  # vaekit 0.1
            if set(saved) != set(self.optimizers):
                raise KeyError(f"optimizers {sorted(saved)} saved, {sorted(self.optimizers)} expected")
            for name, opt in self.optimizers.items():
                opt.load_state_dict(saved[name])
            self.epoch, self.step = int(state["epoch"]), int(state["step"])
            torch.set_rng_state(state["torch_rng"])
            self.dist.restore_rng(state.get("rank_rngs"), self.tc.seed, self.epoch)
            self.shuffle_rng.set_state(state["shuffle_rng"])
            if state["cuda_rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            self.best_val, self.best_epoch = state["best_val"], int(state["best_epoch"])
            self.bad_epochs, self.stopped_early = int(state["bad_epochs"]), bool(state["stopped_early"])
            self.batch, self.rollbacks = int(state.get("batch", 0)), int(state.get("rollbacks", 0))
            self.seconds = float(state.get("seconds", 0.0))
            self.sums, self.n = self._rank_sums(state.get("sums"))
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise VaekitError(f"training state {self.run_dir / rundir.STATE} does not fit this run ({e}); "
                              "start a new run with another --out") from None
        if self.dist.is_writer:
            rundir.trim_metrics(self.run_dir, self.epoch)

    def _rank_sums(self, saved) -> tuple:
        """This rank's running sums of a mid-epoch state; saved by another number of processes, rank 0
        takes them all (the epoch's train_* means stay right; the model never depended on them)."""
        if not saved:
            return {}, 0
        if len(saved) != self.dist.world:
            saved = [(_add_sums([s for s, _ in saved]), sum(n for _, n in saved))] + [({}, 0)] * self.dist.world
        sums, n = saved[self.dist.rank]
        return {k: v.to(self.device) for k, v in sums.items()}, int(n)

    # -- loop ----------------------------------------------------------------------------
    def fit(self, resume: bool = False, state: Optional[dict] = None):
        """Train until ``epochs``; with ``resume``, first restore ``state`` (default: read state.pt).

        While it trains, torch.distributions skips its argument checks (each one waits for the
        GPU); the non-finite watch stands in for them. ``--precision bf16`` autocasts the
        networks and ``--compile`` compiles them (train/acceleration.py)."""
        if self.precision_note and self.dist.is_writer:
            self.progress.notice(self.precision_note)
        with unchecked_distributions(), network_precision(self.model, self.tc.precision, self.device), \
                compiled_networks(self.model, self.tc.compile), self.stops.listening():
            return self._fit(resume, state)

    def _fit(self, resume: bool, state: Optional[dict]):
        self.model.to(self.device)
        train = self._on_device(self.splits.train)
        val = self._on_device(self.splits.val)
        self._materialize(train)
        self.dist.broadcast_model(self.model)
        self.optimizers = make_optimizers(self.model.parameter_groups(), self.tc)
        if self.device.type == "cuda":
            # same seed, same numbers on a GPU too (at some speed cost)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        if resume:
            self._restore(state)
            # a raised --patience lets an early-stopped run go on
            self.stopped_early = self.tc.patience is not None and self.bad_epochs >= self.tc.patience
            if self.stopped_early:
                self.progress.notice(f"run stopped early at epoch {self.epoch}; raise --patience to go on")
                return self.model
            if self.epoch >= self.tc.epochs:
                self.progress.notice(f"the run has already trained {self.epoch} epochs: nothing to do (pass "
                                     f"--epochs above {self.epoch} to train on)")
            else:
                self._event("resumed")
        else:
            torch.manual_seed(self.dist.rank_seed(self.tc.seed))
        self.last_good.keep(self._state())  # what a non-finite loss before the first checkpoint goes back to
        steps_per_epoch = math.ceil(len(train) / self.tc.batch_size)
        warmup_steps = self.tc.warmup_epochs * steps_per_epoch
        self.compile_timer = FirstStepTimer() if self.tc.compile else None  # started here: setup excluded
        while self.epoch < self.tc.epochs:
            try:
                self._epoch(train, val, steps_per_epoch, warmup_steps)
            except Diverged as bad:
                self._roll_back(bad)
                continue
            if self.stopped_early:
                self.progress.notice(f"early stopping: no validation improvement for {self.tc.patience} epochs "
                                     f"(best epoch {self.best_epoch})")
                break
            if self._asked_to_stop():  # a signal during validation or saving: the epoch is saved
                raise self._interruption()
        return self.model

    def _epoch(self, train, val, steps_per_epoch: int, warmup_steps: int) -> None:
        """One epoch (or the rest of one resumed mid-epoch): train, validate, save."""
        start = time.perf_counter() - self.seconds
        try:
            train_terms = self._train_epoch(train, steps_per_epoch, warmup_steps, start)
        except (ValueError, RuntimeError):
            self._check_finite(agree=False)  # a NaN weight can make a later step fail: say what happened first
            raise
        self._check_finite()
        self._check_weights()
        with evaluating(self.model):
            self.model.fit_prior(iterate_batches(train, max(self.tc.batch_size, 512)))
        self.dist.after_step(self.model)  # the fitted prior's buffers, rank 0's everywhere
        val_terms = self.validate(val) if len(val) else {}
        if len(val) and self.tc.val_metrics:  # the objective's own terms (model units) win a name clash
            metrics = self.dist.from_writer(lambda: self.metrics(val))
            val_terms.update({k: v for k, v in metrics.items() if k not in val_terms})
        row = {"epoch": self.epoch + 1, "step": self.step, "kl_weight": linear_warmup(self.step, warmup_steps)}
        row.update({f"train_{k}": v for k, v in train_terms.items()})
        row.update({f"val_{k}": v for k, v in val_terms.items()})
        row["seconds"] = time.perf_counter() - start
        self._check_row(row)
        self.epoch, self.batch, self.sums, self.n, self.seconds = self.epoch + 1, 0, {}, 0, 0.0
        improved = self._early_stopping(val_terms)
        self._save(row, improved)
        self.progress.log(_summary(row, self.monitor))

    def _materialize(self, train) -> None:
        # A user's encoder may hold lazy layers: run one batch so every parameter has a shape.
        if has_lazy(self.model):
            x, y = next(iterate_batches(train, 2))
            with evaluating(self.model):  # eval mode: no EMA codebook update from two examples
                self.model(x, y)

    def _on_device(self, data):
        if self.device.type == "cpu":
            return data
        return data.to(self.device)  # streamed data moves each batch as it is read

    def _train_epoch(self, train, steps: int, warmup_steps: int, start: float) -> dict:
        self.model.train()
        self.epoch_shuffle = self.shuffle_rng.get_state()  # resumed mid-epoch, the state.pt restored it
        with self.progress.epoch(self.epoch + 1, self.tc.epochs, steps, done=self.batch) as bar:
            for x, y in iterate_batches(train, self.tc.batch_size, shuffle=True, generator=self.shuffle_rng,
                                        shard=self.dist.shard, skip=self.batch):
                b = x.shape[0]
                if not b:  # this rank's share of a last global batch smaller than the world: weight 0
                    self._optimize(zero_losses(self.optimizers), examples=0)
                    self.dist.after_step(self.model)
                    out = None
                else:
                    out = self.objective(self.model, x, y, kl_weight=linear_warmup(self.step, warmup_steps))
                    self._optimize(out.losses, examples=b)
                    self.dist.after_step(self.model)
                    self.n += b
                    # sums stay tensors on the device: no GPU sync per step
                    for k, v in _named_terms(out).items():
                        self.sums[k] = self.sums.get(k, 0.0) + v.detach() * b
                self.step, self.batch = self.step + 1, self.batch + 1
                faults.point("step")
                self._after_step(start)
                if out is not None:
                    bar.advance(out.loss.detach())
        return self.dist.sum_means(self.sums, self.n)

    def _after_step(self, start: float) -> None:
        """Every watch.every steps the non-finite record is read; every ``checkpoint_every`` steps, and
        when a signal asked to stop, the state is saved here, mid-epoch."""
        read = self.watch.due(self.step)
        if read:
            self._check_finite()
        if self.compile_timer is not None and self.compile_timer.done():
            self.progress.log(f"torch.compile: the first step took {self.compile_timer.seconds:.1f} s "
                              "(compiling the networks)")
        # one process reads the signal note every step; under torchrun the ranks agree when they read the watch
        stop = (self.dist.world == 1 or read) and self._asked_to_stop()
        every = self.tc.checkpoint_every
        if stop or (every and self.step % every == 0):
            if not read:
                self._check_finite()
            self._check_weights()
            self.seconds = time.perf_counter() - start
            self._save_state()
        if stop:
            raise self._interruption()

    def preflight(self) -> None:
        """Two examples through the objective, before anything is written: a model and an objective
        that do not fit together fail here. Runs in eval mode without gradients, and leaves the
        random state as it was."""
        allowed = self.model.objectives
        if allowed is not None and self.tc.objective.name not in allowed:
            raise VaekitError(f"the {self.model.name} model trains with the {' or '.join(allowed)} objective, not "
                              f"{self.tc.objective.name}; drop --objective")
        groups = self.model.parameter_groups()
        _check_partition(groups, self.model)
        make_optimizers(groups, self.tc)  # unknown group names in train.group_optimizers fail here
        x, y = next(iterate_batches(self.splits.train, 2))
        with torch.random.fork_rng(devices=[]), evaluating(self.model):
            out = self.objective(self.model, x, y)
        self._check_groups(out.losses, groups)
        if self.monitor not in _named_terms(out):
            raise RuntimeError(f"{type(self.objective).__name__}.monitor names {self.monitor!r}, which is not "
                               f"among its terms {sorted(_named_terms(out))}")

    def _check_groups(self, losses: Dict[str, torch.Tensor], groups) -> None:
        missing = [name for name in groups if name not in losses]
        if missing:
            raise VaekitError(f"the {self.tc.objective.name} objective gives no loss for this model's parameter "
                              f"group(s) {', '.join(missing)}; train with the objective its variant names "
                              f"(`vaekit models --json` lists each variant's config)")

    def _optimize(self, losses: Dict[str, torch.Tensor], examples: int = 1) -> None:
        """Each optimizer steps on its own loss; its gradients come from that loss alone (and, under
        torchrun, from every rank's, weighted by their ``examples``)."""
        self._check_groups(losses, self.optimizers)
        for name, loss in losses.items():
            self.watch.note(name, loss, self.step + 1)  # read every watch.every steps: no sync here
        groups = list(self.optimizers.items())
        if len(groups) == 1:
            (name, opt), = groups
            opt.zero_grad(set_to_none=True)
            losses[name].backward()
        else:  # all gradients first, from the same forward pass; then every step
            for i, (name, opt) in enumerate(groups):
                opt.zero_grad(set_to_none=True)
                params = [p for g in opt.param_groups for p in g["params"]]
                losses[name].backward(inputs=params, retain_graph=i < len(groups) - 1)
        self.dist.reduce_gradients(self.optimizers, examples)
        for name, opt in groups:
            if self.tc.grad_clip:  # the norm it computes anyway is watched too (a nan there spreads to every weight)
                norm = torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]],
                                                      self.tc.grad_clip)
                self.watch.note(f"{name} gradient", norm, self.step + 1)
            opt.step()

    def _check_finite(self, agree: bool = True) -> None:
        """Raise Diverged at the first non-finite loss the watch recorded (it synchronises once). With
        ``agree``, every rank raises when any rank saw one (all must call it at the same step)."""
        bad = self.watch.first_bad()
        if not (self.dist.any(bad is not None) if agree else bad is not None):
            return
        name, step = bad or ("main", None)  # None: another rank saw it
        raise Diverged(f"the {_loss_name(name)} became nan or inf", self.epoch + 1, step)

    def _roll_back(self, bad: Diverged) -> None:
        """Back to the last good state with lower learning rates, or stop when the retries are spent.
        Each rollback is a row of metrics.jsonl: {"event": "rollback", ...}."""
        good = self.last_good.copy()
        kept = _position(good["epoch"], good["step"], good.get("batch", 0))
        if self.rollbacks >= self.tc.nan_retries:
            tried = (f" after {self.rollbacks} rollback{'s' * (self.rollbacks != 1)}, with the learning rate "
                     f"now {_rates(self.optimizers)}" if self.rollbacks else "")
            self._event("diverged", reason=bad.what, at_epoch=bad.epoch, at_step=bad.step)
            saved = (f"The last good checkpoint ({kept}) is kept in the run directory" if good["epoch"] or
                     good.get("batch") else "Nothing was saved yet")
            raise VaekitError(f"{bad.what} {bad.where()}{tried}; try a lower --lr or --grad-clip 1.0. {saved}")
        rates = [lr * self.tc.nan_lr_factor for lr in learning_rates(self.optimizers)]
        rollbacks = self.rollbacks + 1
        self._restore(good)
        set_learning_rates(self.optimizers, rates)
        self.rollbacks = rollbacks
        self.watch.reset()
        self._event("rollback", reason=bad.what, at_epoch=bad.epoch, at_step=bad.step, lr=rates)
        self.progress.notice(f"{bad.what} {bad.where()}: back to the last good state ({kept}) with the learning "
                             f"rate lowered to {_rates(self.optimizers)} (retry {rollbacks} of {self.tc.nan_retries})")

    def _asked_to_stop(self) -> bool:
        """Whether Ctrl-C or SIGTERM came; under torchrun every rank asks at the same step and they agree."""
        return self.dist.any(self.stops.requested)

    def _interruption(self) -> Interrupted:
        """What stops training after a signal, the state just saved: an event row and the resume command."""
        where = _position(self.epoch, self.step, self.batch)
        self._event("interrupted", signal=self.stops.name)
        nproc = f" --nproc {self.dist.world}" if self.dist.world > 1 else ""
        return Interrupted(f"interrupted by {self.stops.name}; the run is saved ({where}): continue with "
                           f"`vaekit train --out {self.run_dir} --resume{nproc}`")

    def _event(self, event: str, **fields) -> None:
        if self.dist.is_writer:
            rundir.append_event(self.run_dir, event, epoch=self.epoch, step=self.step, **fields)

    def validate(self, data) -> Dict[str, float]:
        """The objective's terms (and losses) on ``data`` in eval mode, per-example means."""
        sums, n = {}, 0
        with evaluating(self.model):
            for x, y in iterate_batches(data, 512, shard=self.dist.shard):
                faults.point("validate")
                if not len(x):
                    continue
                out = self.objective(self.model, x, y)
                for k, v in _named_terms(out).items():
                    sums[k] = sums.get(k, 0.0) + float(v) * x.shape[0]
                n += x.shape[0]
        return self.dist.sum_means(sums, n)

    def eval_context(self) -> EvalContext:
        """Metrics that fit something during validation fit it on the training split."""
        return EvalContext(train=self.splits.train, source=self.config.data.source, info=self.splits.info,
                           seed=self.tc.seed, objective=self.tc.objective.name)

    def metrics(self, data) -> Dict[str, float]:
        """The registered metrics named in ``train.val_metrics``, looked up by name (``n`` dropped)."""
        names = [m.name for m in self.tc.val_metrics]
        values = compute_metrics(self.model, data, names, {m.name: m.args for m in self.tc.val_metrics},
                                 self.eval_context())
        return {k: v for k, v in values.items() if k != "n" and isinstance(v, (int, float))}  # numbers only

    def _check_weights(self) -> None:
        """Never validate or save a broken model: the last step may have produced NaN weights."""
        _diverged([name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()],
                  self.epoch + 1)

    def _check_row(self, row: dict) -> None:
        _diverged([k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)], row["epoch"])

    def _early_stopping(self, val_terms: dict) -> bool:
        """Track the best monitored validation value; returns True when this epoch is the best so far."""
        if not val_terms:
            return False
        value = val_terms[self.monitor]
        loss = -value if self.mode == "max" else value
        if self.best_val is None or loss < self.best_val:
            self.best_val, self.best_epoch, self.bad_epochs = loss, self.epoch, 0
            return True
        self.bad_epochs += 1
        if self.tc.patience is not None and self.bad_epochs >= self.tc.patience:
            self.stopped_early = True
        return False

    def _save(self, row: dict, improved: bool) -> None:
        """metrics row first, then weights, then state: resume trims rows past the state's epoch."""
        if self.dist.is_writer:
            rundir.append_metrics(self.run_dir, row)
            meta = {"epoch": str(self.epoch)}
            rundir.save_weights(self.run_dir / rundir.WEIGHTS, self.model, meta)
            if improved:
                rundir.save_weights(self.run_dir / rundir.BEST, self.model, meta)
        self._save_state()

    def _save_state(self) -> None:
        """state.pt, and the in-memory copy a rollback returns to. Mid-epoch only state.pt is written:
        model.safetensors stays the last completed epoch's."""
        state = self._state()  # on every rank: it gathers their random states
        if self.dist.is_writer:
            rundir.save_state(self.run_dir / rundir.STATE, state)
        self.last_good.keep(state)


def _check_partition(groups, model) -> None:
    """Every trainable parameter in exactly one group: in two it would be stepped twice, in none never."""
    seen = [id(p) for params in groups.values() for p in params]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if len(seen) != len(set(seen)) or set(seen) != trainable:
        raise RuntimeError(f"{type(model).__name__}.parameter_groups() must hold every trainable parameter "
                           "exactly once")


def _named_terms(out) -> Dict[str, torch.Tensor]:
    """An objective's terms plus its losses: ``loss`` for the main one, ``loss_<group>`` for others."""
    losses = {("loss" if name == "main" else f"loss_{name}"): v for name, v in out.losses.items()}
    return {**out.terms, **losses}


def _loss_name(watched: str) -> str:
    """"main" -> "loss", "discriminator" -> "discriminator loss", "main gradient" -> "gradient norm"."""
    group, _, gradient = watched.partition(" ")
    return ("" if group == "main" else f"{group} ") + ("gradient norm" if gradient else "loss")


def _diverged(bad: list, epoch: int) -> None:
    if bad:
        raise Diverged(f"training diverged (non-finite {', '.join(bad[:3])})", epoch)


def _position(epoch: int, step: int, batch: int) -> str:
    """Where a saved state is, in words."""
    if batch:
        return f"epoch {epoch + 1}, step {step}"
    return f"epoch {epoch}" if epoch else "the start"


def _rates(optimizers) -> str:
    return ", ".join(f"{lr:.3g}" for lr in dict.fromkeys(learning_rates(optimizers)))


def _add_sums(every: list) -> dict:
    total = {}
    for sums in every:
        for k, v in sums.items():
            total[k] = total.get(k, 0.0) + v
    return total


def _summary(row: dict, monitor: str) -> str:
    keys = [monitor] + [k for k in ("elbo", "recon", "kl") if k != monitor]
    text = f"epoch {row['epoch']:>3}  train {monitor} {row.get(f'train_{monitor}', math.nan):.2f}"
    if f"val_{monitor}" in row:
        text += "  val " + ", ".join(f"{k} {row[f'val_{k}']:.2f}" for k in keys if f"val_{k}" in row)
    return text + f"  {row['seconds']:.1f}s"
