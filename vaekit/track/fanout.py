"""The trackers of one training process (rank 0), each isolated: a tracker that raises is dropped with
one warning line and a ``tracker_failed`` event row, and training goes on untouched."""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from .. import rundir
from ..config import RunConfig
from .base import Tracker

# tracker: (its module here, its class, the library it needs)
CLASSES = {"tensorboard": ("tensorboard", "TensorBoard", "tensorboard"),
           "mlflow": ("mlflow", "MLflow", "mlflow.tracking"), "wandb": ("wandb", "WandB", "wandb")}


class Trackers:
    """Every tracker the config names, started (or, from RUN/trackers.json, continued) at the first thing
    logged. ``examples``: a few (x, y) validation examples whose reconstructions the images show."""

    def __init__(self, config: RunConfig, run_dir, notice: Callable[[str], None] = print, examples=None):
        self.config, self.run_dir, self.notice, self.examples = config, Path(run_dir), notice, examples
        self.live: List[Tracker] = []
        self.opened = False

    def epoch(self, row: dict, model, epoch: int) -> None:
        """A completed epoch's row, and its images every ``log.images_every`` epochs."""
        self.row(row)
        every = self.config.log.images_every
        if every and epoch % every == 0 and self.examples is not None:
            self.images(model, *self.examples, step=int(row["step"]))

    def open(self, first_step: Optional[int]) -> "Trackers":
        """Start the trackers; ``first_step``: the step a resumed run goes on from (None: it does not train)."""
        self.opened = True
        saved = rundir.read_trackers(self.run_dir)
        for name in self.config.log.trackers:
            module, cls, _ = CLASSES[name]
            tracker_class = getattr(importlib.import_module(f".{module}", __package__), cls)
            # a tracker that cannot start is not started: the rest of the run goes on without it
            tracker = self._call(name, lambda: tracker_class(self.run_dir, getattr(self.config.log, name),
                                                             saved.get(name), first_step), first_step)
            if tracker is not None:
                self.live.append(tracker)
                saved[name] = tracker.ids()
        if self.live:
            rundir.write_trackers(self.run_dir, saved)
            params = flat_config(self.config)
            self._each(lambda t: t.params(params), first_step)
        return self

    def row(self, row: dict) -> None:
        """A metrics.jsonl row, at its optimizer step."""
        self._open(row["step"])
        values = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                  and k not in ("step",)}
        self._each(lambda t: t.scalars(values, int(row["step"])), row["step"])

    def event(self, event: str, step: int) -> None:
        self._open(step)
        self._each(lambda t: t.scalars({f"event/{event}": 1.0}, step), step)

    def images(self, model, examples: Optional[torch.Tensor], labels, step: int) -> None:
        """Samples and reconstructions of image data, as (H, W, 3) uint8 grids."""
        if not self.live or examples is None:
            return
        try:
            grids = picture_grids(model, examples, labels)
        except Exception as e:  # a model whose decoded mean is no image: the trackers get numbers only
            self.notice(f"warning: no images for the trackers ({type(e).__name__}: {e}); numbers are still logged")
            self.examples = None
            return
        self._each(lambda t: t.images(grids, step), step)

    def summary(self, numbers: Dict[str, float], step: int) -> None:
        """What ``vaekit evaluate`` saved, as ``evaluate/NAME`` at the run's last step."""
        self._open(None)
        self._each(lambda t: t.summary({f"evaluate/{k}": v for k, v in numbers.items()}, step), step)

    def _open(self, step: Optional[int]) -> None:
        if not self.opened:
            self.open(step)

    def close(self) -> None:
        for tracker in list(self.live):
            self._call(tracker.name, tracker.close, None)
        self.live = []

    # -- isolation ---------------------------------------------------------------------------
    def _each(self, call: Callable[[Tracker], None], step) -> None:
        for tracker in list(self.live):
            if self._call(tracker.name, lambda: call(tracker) or True, step) is None:
                self.live.remove(tracker)

    def _call(self, name: str, fn, step):
        try:
            return fn()
        except Exception as e:  # any failure of a tracker's library: its disk, its server, its bugs
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            self.notice(f"warning: the {name} tracker failed ({type(e).__name__}: {first}); training goes on "
                        f"without it")
            try:
                rundir.append_event(self.run_dir, "tracker_failed", tracker=name, error=first,
                                    **({"step": int(step)} if step is not None else {}))
            except Exception:  # the run directory itself failing is the trainer's to report
                pass
            return None


def flat_config(config: RunConfig) -> Dict[str, object]:
    """``{"model.latent_dim": 16, "train.optimizer.args.lr": ...}``: the config's leaves, lists as JSON."""
    out: Dict[str, object] = {}

    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, (list, dict)) or v is None else v
    walk({k: v for k, v in config.to_dict().items() if k != "data_info"}, "")
    return out


@torch.no_grad()
def picture_grids(model, x: torch.Tensor, labels) -> Dict[str, np.ndarray]:
    from ..models.helpers import evaluating
    from ..plots.grid import image_grid

    grids = {}
    devices = [model.device.index or 0] if model.device.type == "cuda" else []
    # the run's random state is left as it was: logging never changes what training does next
    with evaluating(model), torch.random.fork_rng(devices=devices), torch.no_grad():
        c = labels if model.conditional else None
        pairs = torch.stack([x.to(model.device), model.reconstruct(x.to(model.device), c)], 1).flatten(0, 1)
        grids["reconstructions"] = pairs
        if model.can("sample"):
            grids["samples"] = model.sample(len(x), c)
    out = {}
    for key, images in grids.items():
        grid = image_grid(images.float().cpu(), nrow=8, scale=max(1, 64 // images.shape[-1]))
        grid = np.repeat(grid[..., None], 3, axis=-1) if grid.ndim == 2 else grid
        out[key] = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
    return out
