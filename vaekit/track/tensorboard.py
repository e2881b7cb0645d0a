"""TensorBoard through ``torch.utils.tensorboard.SummaryWriter``: one folder per tracker run, under
RUN/tensorboard (or ``log.tensorboard.dir``); ``tensorboard --logdir RUN/tensorboard`` shows it."""
from __future__ import annotations

import secrets
import warnings
from pathlib import Path
from typing import Dict

import numpy as np

from .base import Tracker, library


class TensorBoard(Tracker):
    name = "tensorboard"

    def __init__(self, *args):
        super().__init__(*args)
        with warnings.catch_warnings():  # the library's own deprecation notes are not the user's business
            warnings.simplefilter("ignore")
            library("tensorboard", self.name)
            from torch.utils.tensorboard import SummaryWriter
        root = Path(self.options.get("dir") or self.run_dir / "tensorboard")
        self.folder = (self.saved or {}).get("folder") or f"run-{secrets.token_hex(4)}"
        # resumed: events past the resumed step were written after the checkpoint; TensorBoard hides them
        purge = self.first_step + 1 if self.saved and self.first_step is not None else None
        self.writer = SummaryWriter(str(root / self.folder), purge_step=purge)

    def ids(self) -> dict:
        return {"folder": self.folder}

    def params(self, params: Dict[str, object]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in params.items())
        self.writer.add_text("config", "| key | value |\n|---|---|\n" + rows, 0)

    def scalars(self, values: Dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def images(self, images: Dict[str, np.ndarray], step: int) -> None:
        for key, image in images.items():
            self.writer.add_image(key, image, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
