"""Experiment trackers: ``--log tensorboard,mlflow,wandb`` (the ``vaekit[log]`` extra).

Each tracker is a small class in a file of its own (:mod:`.tensorboard`, :mod:`.mlflow`,
:mod:`.wandb`), written on the tracker's own library: no event file is written by hand.
:class:`~vaekit.track.fanout.Trackers` sends them the run's config, every ``metrics.jsonl`` row
and event, images every ``log.images_every`` epochs and the numbers ``vaekit evaluate`` saves;
a tracker that fails is dropped with one warning line and an event row, and training goes on.
The tracker runs' ids are kept in ``RUN/trackers.json``, so ``--resume`` continues them.
"""
from __future__ import annotations

from typing import List

from ..errors import VaekitError

NAMES = ("tensorboard", "mlflow", "wandb")


def parse_trackers(value, option: str = "--log") -> List[str]:
    """``"tensorboard,mlflow"`` (or a list) -> ["tensorboard", "mlflow"]; ``none`` or "" -> []."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    names = [str(n).strip().lower() for n in items if str(n).strip()]
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise VaekitError(f"{option} {','.join(unknown)}: unknown tracker; choose from {', '.join(NAMES)} or none "
                          f"(several with commas: {option} tensorboard,mlflow)")
    return list(dict.fromkeys(names))


def tracking(config, splits, run_dir, notice):
    """The :class:`~vaekit.track.fanout.Trackers` of a training run, or None when it logs to none. Images
    are logged for image data of 1 or 3 channels: reconstructions of 8 validation examples, and samples."""
    if not config.log.trackers:
        return None
    from ..data.batching import iterate_batches
    from .base import library
    from .fanout import CLASSES, Trackers

    for name in config.log.trackers:  # a missing library is refused before anything is written
        library(CLASSES[name][2], name)

    info, split = splits.info, splits.val if len(splits.val) else splits.train
    examples = next(iterate_batches(split, 8, batches=1)) if info.kind == "image" and info.shape[0] in (1, 3) else None
    return Trackers(config, run_dir, notice, examples)
