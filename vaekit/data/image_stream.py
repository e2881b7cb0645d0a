"""A folder of images too large for memory: each batch is decoded when it is asked for, in worker
processes, so memory stays bounded by a few batches, not the dataset.

:class:`ImageRows` plays the part a :class:`vaekit.data.mapped.RowSource` plays for .npy files: a
split is a :class:`MappedData` of row numbers (file numbers) into it. ``read_batches`` decodes a list
of batches in ``workers`` processes (:class:`DecodePool`: batch i goes to worker i mod W, each worker
holding at most two batches ahead) and yields them in order. The order comes from the caller (the run's
shuffle generator), and the workers draw nothing random, so resume stays exact. Each image is decoded
exactly as in memory (:func:`decode_image`), so the numbers are the same either way. The workers are fresh
processes that import no torch (:mod:`vaekit.data.decode_worker`), not forks of the training process.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np
import torch

from ..errors import VaekitError
from .decode_worker import decode_batch
from .image_decode import ImageTransform
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
        files = [self.files[row] for row in np.asarray(rows).tolist()]
        return torch.from_numpy(decode_batch(files, self.transform, self.shape))

    def chunk_rows(self) -> int:
        return max(1, CHUNK_BYTES // (int(np.prod(self.shape)) * 4))

    def read_batches(self, batches: List[np.ndarray]) -> Iterator[torch.Tensor]:
        """The examples of each row list in ``batches``, in order, decoded in worker processes."""
        workers = min(self.workers, len(batches))
        if workers <= 1:
            yield from (self.examples(rows) for rows in batches)
            return
        with DecodePool(workers, (self.transform, self.shape, self.name)) as pool:
            for x in pool.decode([[self.files[row] for row in np.asarray(rows).tolist()] for rows in batches]):
                yield torch.from_numpy(x)


class DecodePool:
    """``workers`` processes of :mod:`vaekit.data.decode_worker`, started on entering and ended on leaving (also
    when the caller stops reading early); ``setup`` is what each receives first: (transform, shape, name)."""

    def __init__(self, workers: int, setup: tuple):
        self.count, self.setup, self.procs = int(workers), setup, []

    def __enter__(self) -> "DecodePool":
        package_root = str(Path(__file__).resolve().parents[2])  # vaekit importable however it was found here
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH"))
                                                             if p))
        for _ in range(self.count):
            self.procs.append(subprocess.Popen([sys.executable, "-m", "vaekit.data.decode_worker", str(os.getpid())],
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env))
            self._send(self.procs[-1], self.setup)
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            for pipe in (proc.stdin, proc.stdout):
                try:
                    pipe.close()
                except OSError:  # a worker that died leaves its pipe broken
                    pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def decode(self, batches: List[List[Path]]) -> Iterator[np.ndarray]:
        """Each list of paths decoded, in order; a bad file's message is a :class:`VaekitError`."""
        ahead = PREFETCH * self.count
        for i in range(min(ahead, len(batches))):
            self._send(self.procs[i % self.count], batches[i])
        for i in range(len(batches)):
            x, error = self._receive(self.procs[i % self.count])
            if error:
                raise VaekitError(error)
            if i + ahead < len(batches):
                self._send(self.procs[i % self.count], batches[i + ahead])
            yield x

    def _send(self, proc: subprocess.Popen, message) -> None:
        try:
            pickle.dump(message, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
        except BrokenPipeError:
            raise VaekitError(self._died(proc)) from None

    def _receive(self, proc: subprocess.Popen):
        try:
            return pickle.load(proc.stdout)
        except (EOFError, pickle.UnpicklingError):
            raise VaekitError(self._died(proc)) from None

    def _died(self, proc: subprocess.Popen) -> str:
        code = proc.wait()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return (f"an image decoding worker (process {proc.pid}) of data {self.setup[2]} {how}; if memory ran out, "
                "pass --workers 1 (decoding in the training process)")
