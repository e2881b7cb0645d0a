"""Weights & Biases through ``wandb.init``; offline by default (``--set log.wandb.mode=online`` syncs
live): the run is written under RUN/wandb, and ``wandb sync RUN/wandb/offline-run-*`` uploads it
later. The W&B run id is kept, and a resume continues that run (``resume="allow"``)."""
from __future__ import annotations

import os
import secrets
import warnings
from typing import Dict

import numpy as np

from .base import Tracker, library


class WandB(Tracker):
    name = "wandb"

    def __init__(self, *args):
        super().__init__(*args)
        os.environ.setdefault("WANDB_SILENT", "true")  # its banners would break the progress bar
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.wandb = library("wandb", self.name)
        self.id = (self.saved or {}).get("id") or secrets.token_hex(4)
        folder = self.options.get("dir") or str(self.run_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.run = self.wandb.init(
                project=self.options.get("project") or "vaekit", entity=self.options.get("entity"), dir=folder,
                mode=self.options.get("mode") or "offline", id=self.id, resume="allow", name=self.run_dir.name,
                settings=self.wandb.Settings(silent=True, console="off", x_disable_stats=True, x_disable_meta=True,
                                             x_save_requirements=False, disable_git=True, save_code=False))

    def ids(self) -> dict:
        return {"id": self.id}

    def params(self, params: Dict[str, object]) -> None:
        self.run.config.update(params, allow_val_change=True)

    def scalars(self, values: Dict[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def summary(self, values: Dict[str, float], step: int) -> None:
        self.run.summary.update(dict(values))  # W&B steps only go forward: a run's totals are its summary

    def images(self, images: Dict[str, np.ndarray], step: int) -> None:
        self.run.log({k: self.wandb.Image(v) for k, v in images.items()}, step=step)

    def close(self) -> None:
        self.run.finish()
