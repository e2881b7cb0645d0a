"""The generic training loop: any model, any registered objective, exact resume."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Optional

import torch

from ..config import RunConfig
from ..data.batching import iterate_batches
from ..data.types import DataSplits
from ..errors import VaekitError
from ..evaluate.elbo import evaluate_elbo
from .. import objectives as _objectives  # noqa: F401  (registers objectives)
from ..models.helpers import has_lazy
from ..registry import OBJECTIVES, OPTIMIZERS
from . import checkpoint as ckpt
from .optimizers import make_optimizer
from .progress import EpochProgress
from .schedules import linear_warmup


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VaekitError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise VaekitError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    return torch.device(name)


class Trainer:
    """Trains ``model`` on ``splits`` per ``config``, writing everything into ``run_dir``."""

    def __init__(self, model, splits: DataSplits, config: RunConfig, run_dir, progress: bool = True):
        self.model, self.splits, self.config = model, splits, config
        self.run_dir = Path(run_dir)
        self.tc = config.train
        try:
            self.objective = OBJECTIVES.get(self.tc.objective)(**self.tc.objective_args)
        except TypeError as e:
            raise VaekitError(f"bad options for the {self.tc.objective!r} objective: {e}") from None
        OPTIMIZERS.get(self.tc.optimizer)  # an unknown name fails now, before anything is written
        self.progress = EpochProgress(progress)
        self.device = resolve_device(self.tc.device)
        self.shuffle_rng = torch.Generator().manual_seed(self.tc.seed)
        self.epoch = 0           # completed epochs
        self.step = 0            # optimizer steps
        self.best_val: Optional[float] = None
        self.best_epoch = 0
        self.bad_epochs = 0
        self.stopped_early = False

    # -- state ---------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "epoch": self.epoch, "step": self.step, "optimizer": self.optimizer.state_dict(),
            # the weights again, so state.pt alone is a consistent resume point
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "torch_rng": torch.get_rng_state(), "shuffle_rng": self.shuffle_rng.get_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "best_val": self.best_val, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
        }

    def _restore(self, state: Optional[dict]) -> None:
        if state is None:
            state = ckpt.load_state(self.run_dir / ckpt.STATE)
        try:
            self.model.load_state_dict({k: v.to(self.device) for k, v in state["model"].items()})
            self.optimizer.load_state_dict(state["optimizer"])
            self.epoch, self.step = int(state["epoch"]), int(state["step"])
            torch.set_rng_state(state["torch_rng"])
            self.shuffle_rng.set_state(state["shuffle_rng"])
            if state["cuda_rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            self.best_val, self.best_epoch = state["best_val"], int(state["best_epoch"])
            self.bad_epochs, self.stopped_early = int(state["bad_epochs"]), bool(state["stopped_early"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise VaekitError(f"training state {self.run_dir / ckpt.STATE} does not fit this run ({e}); "
                              "start a new run with another --out") from None
        self._trim_metrics()

    def _trim_metrics(self) -> None:
        """Drop metric rows past the checkpoint (written just before a crash) and broken lines."""
        path = self.run_dir / ckpt.METRICS
        if not path.exists():
            return
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("epoch", 0) <= self.epoch:
                rows.append(line)
        ckpt.write_text(path, "".join(r + "\n" for r in rows))

    # -- loop ----------------------------------------------------------------
    def fit(self, resume: bool = False, state: Optional[dict] = None):
        """Train until ``epochs``; with ``resume``, first restore ``state`` (default: read state.pt)."""
        self.model.to(self.device)
        train = self._on_device(self.splits.train)
        val = self._on_device(self.splits.val)
        self.optimizer = make_optimizer(self.tc.optimizer, self._materialized_parameters(train), self.tc.lr)
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
        else:
            torch.manual_seed(self.tc.seed)
        steps_per_epoch = math.ceil(len(train) / self.tc.batch_size)
        warmup_steps = self.tc.warmup_epochs * steps_per_epoch
        while self.epoch < self.tc.epochs:
            start = time.perf_counter()
            train_terms = self._train_epoch(train, steps_per_epoch, warmup_steps)
            self._check_weights(self.epoch + 1)
            val_terms = evaluate_elbo(self.model, val) if len(val) else {}
            self.epoch += 1
            row = {"epoch": self.epoch, "step": self.step, "kl_weight": linear_warmup(self.step, warmup_steps)}
            row.update({f"train_{k}": v for k, v in train_terms.items()})
            row.update({f"val_{k}": v for k, v in val_terms.items() if k != "n"})
            row["seconds"] = time.perf_counter() - start
            self._check_row(row)
            improved = self._early_stopping(val_terms)
            self._save(row, improved)
            self.progress.log(_summary(row))
            if self.stopped_early:
                self.progress.notice(f"early stopping: no validation improvement for {self.tc.patience} epochs "
                                  f"(best epoch {self.best_epoch})")
                break
        return self.model

    def _materialized_parameters(self, train):
        # A user's encoder may hold lazy layers: run one batch so every parameter has a shape.
        if has_lazy(self.model):
            x, y = next(iterate_batches(train, 2))
            with torch.no_grad():
                self.model(x, y)
        return self.model.parameters()

    def _on_device(self, data):
        if self.device.type == "cpu":
            return data
        return type(data)(data.x.to(self.device), None if data.y is None else data.y.to(self.device))

    def _train_epoch(self, train, steps: int, warmup_steps: int) -> dict:
        self.model.train()
        sums, n = {}, 0
        with self.progress.epoch(self.epoch + 1, self.tc.epochs, steps) as bar:
            for x, y in iterate_batches(train, self.tc.batch_size, shuffle=True, generator=self.shuffle_rng):
                out = self.objective(self.model, x, y, kl_weight=linear_warmup(self.step, warmup_steps))
                if not torch.isfinite(out.loss):
                    raise VaekitError(
                        f"the loss became {float(out.loss.detach())} at epoch {self.epoch + 1}, step {self.step + 1}; "
                        f"try a lower --lr or --grad-clip 1.0. The last good checkpoint (epoch {self.epoch}) "
                        "is kept in the run directory")
                self.optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                if self.tc.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tc.grad_clip)
                self.optimizer.step()
                self.step += 1
                b = x.shape[0]
                n += b
                # sums stay tensors on the device: no GPU sync per step
                terms = dict(out.terms, loss=out.loss)
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v.detach() * b
                bar.advance(out.loss.detach())
        return {k: float(v) / n for k, v in sums.items()}

    def _check_weights(self, epoch: int) -> None:
        """Never validate or save a broken model: the epoch's last step may have produced NaN weights."""
        _diverged([name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()], epoch)

    def _check_row(self, row: dict) -> None:
        _diverged([k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)], row["epoch"])

    def _early_stopping(self, val_terms: dict) -> bool:
        """Track the best validation -ELBO; returns True when this epoch is the best so far."""
        if not val_terms:
            return False
        val_loss = -val_terms["elbo"]
        if self.best_val is None or val_loss < self.best_val:
            self.best_val, self.best_epoch, self.bad_epochs = val_loss, self.epoch, 0
            return True
        self.bad_epochs += 1
        if self.tc.patience is not None and self.bad_epochs >= self.tc.patience:
            self.stopped_early = True
        return False

    def _save(self, row: dict, improved: bool) -> None:
        """metrics row first, then weights, then state: resume trims rows past the state's epoch."""
        with open(self.run_dir / ckpt.METRICS, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        meta = {"epoch": str(self.epoch)}
        ckpt.save_weights(self.run_dir / ckpt.WEIGHTS, self.model, meta)
        if improved:
            ckpt.save_weights(self.run_dir / ckpt.BEST, self.model, meta)
        ckpt.save_state(self.run_dir / ckpt.STATE, self._state())


def _diverged(bad: list, epoch: int) -> None:
    if bad:
        raise VaekitError(
            f"training diverged in epoch {epoch} (non-finite {', '.join(bad[:3])}); try a lower --lr or "
            f"--grad-clip 1.0. The last good checkpoint (epoch {epoch - 1}) is kept in the run directory")


def _summary(row: dict) -> str:
    text = f"epoch {row['epoch']:>3}  train elbo {row['train_elbo']:.2f}"
    if "val_elbo" in row:
        text += f"  val elbo {row['val_elbo']:.2f} (recon {row['val_recon']:.2f}, kl {row['val_kl']:.2f})"
    return text + f"  {row['seconds']:.1f}s"
