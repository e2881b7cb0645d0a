"""A folder of images too large for memory: each batch is decoded when it is asked for, in worker
processes, so memory stays bounded by a few batches, not the dataset.

:class:`ImageRows` plays the part a :class:`vaekit.data.mapped.RowSource` plays for .npy files: a
split is a :class:`MappedData` of row numbers (file numbers) into it. ``read_batches`` decodes a list
of batches in ``workers`` processes (a ``torch.utils.data.DataLoader`` whose items are whole
batches, each with at most two batches per worker decoded ahead) and yields them in order. The
order comes from the caller (the run's shuffle generator), never from the DataLoader; its own
generator is a private one, so creating it draws nothing from torch's global generator and resume
stays exact. Each image is decoded exactly as in memory (:func:`decode_image`), so the numbers are
the same either way.
"""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator, List, Optional

import numpy as np
import torch

from ..errors import VaekitError
from .image_decode import ImageTransform, decode_image
from .mapped import CHUNK_BYTES
from .types import DataInfo

PREFETCH = 2  # batches decoded ahead per worker


def default_workers() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


class ImageRows:
    """Image files as rows: ``examples(rows)`` decodes those files through ``transform``."""

    def __init__(self, files: List[Path], shape: tuple, transform: ImageTransform, name: str,
                 workers: Optional[int] = None):
        self.files, self.transform, self.name = list(files), transform, name
        self.shape = tuple(int(s) for s in shape)
        self.workers = default_workers() if workers is None else int(workers)
        self.starts = np.array([0, len(self.files)])  # one "file" of rows, as RowSource counts them
        self.info: Optional[DataInfo] = None

    def examples(self, rows: np.ndarray, normalize: bool = True) -> torch.Tensor:
        """float32 (len(rows), C, H, W) in [0, 1] (images are never normalized)."""
        x = np.empty((len(rows), *self.shape), dtype=np.float32)
        for i, row in enumerate(np.asarray(rows).tolist()):
            x[i] = decode_image(self.files[row], self.transform)
        return torch.from_numpy(x)

    def chunk_rows(self) -> int:
        return max(1, CHUNK_BYTES // (int(np.prod(self.shape)) * 4))

    def read_batches(self, batches: List[np.ndarray]) -> Iterator[torch.Tensor]:
        """The examples of each row list in ``batches``, in order, decoded in worker processes."""
        workers = min(self.workers, len(batches))
        if workers <= 1:
            yield from (self.examples(rows) for rows in batches)
            return
        from torch.utils.data import DataLoader

        loader = DataLoader(_Batches(self, batches), batch_size=None, shuffle=False, num_workers=workers,
                            prefetch_factor=PREFETCH, generator=torch.Generator(),
                            worker_init_fn=partial(exit_if_orphaned, os.getpid()))
        for x, error in loader:
            if error:
                raise VaekitError(error)
            yield x


def exit_if_orphaned(parent: int, worker_id: int) -> None:
    """A worker whose parent died (a SIGKILL) while the worker was starting exits. torch's watchdog takes the
    parent it sees after this call as the one to outlive, so such a worker would otherwise wait forever."""
    if os.getppid() != parent:
        os._exit(0)


class _Batches(torch.utils.data.Dataset):
    """Item i: batch i decoded, and None; or an empty tensor and the error's message (a worker's
    exception would reach the user wrapped in a traceback)."""

    def __init__(self, source: ImageRows, batches: Iterable[np.ndarray]):
        self.source, self.batches = source, list(batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        try:
            return self.source.examples(self.batches[i]), ""
        except VaekitError as e:
            return torch.empty(0), str(e)
        except PermissionError as e:
            return torch.empty(0), (f"cannot read '{e.filename}' (of data {self.source.name}): permission denied; "
                                    "make it readable (chmod) or run vaekit as a user who can read it")
