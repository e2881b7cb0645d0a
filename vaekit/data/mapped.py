"""Examples streamed from .npy files: a split is a list of row numbers, each batch is read and
converted when it is asked for, so memory stays bounded by the batch, not the dataset.

``MappedData`` stands in for :class:`TensorData` wherever batches are drawn: ``len``,
``subset`` (an index view, no data copied; a subset of at most ~16 MB is read into a
:class:`TensorData`, so plots and metrics that look at a sample get tensors), ``y``/``factors`` (labels are small and stay in
memory) and ``x[index]`` -> a float32 tensor converted exactly as :func:`load_data` converts
the whole array (the same elementwise operations, so the numbers are bit-identical).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Optional

import numpy as np
import torch

from ..errors import VaekitError
from .arrays import channels_first, scale_images
from .npy_reader import NpyFile, read_rows
from .types import DataInfo, TensorData

CHUNK_BYTES = 16 << 20  # float32 bytes per chunk when a whole split is scanned


@dataclass
class RowSource:
    """Where rows come from and how a raw row becomes an example: ``layout`` from
    :func:`example_layout`, ``scale`` from :func:`image_scale` (images), ``info`` normalizes tables."""

    files: List[NpyFile]
    starts: np.ndarray  # (len(files) + 1,) global number of each file's first row, then the total
    layout: str
    scale: Optional[str]
    info: Optional[DataInfo] = None  # set once the training split's statistics are known
    name: str = "data"

    def raw(self, rows: np.ndarray) -> np.ndarray:
        return read_rows(self.files, self.starts, rows)

    def examples(self, rows: np.ndarray, normalize: bool = True) -> torch.Tensor:
        """float32 (len(rows), *shape): images in [0, 1] channels-first, tables standardized."""
        raw = self.raw(rows)
        if self.layout == "table":
            x = torch.from_numpy(raw.astype(np.float32, copy=False))
        else:
            x = torch.from_numpy(scale_images(channels_first(raw, self.layout), self.scale))
        return self.info.normalize(x) if normalize and self.info is not None else x

    def chunk_rows(self) -> int:
        per_row = max(1, int(np.prod(self.files[0].shape[1:])) * 4)
        return max(1, CHUNK_BYTES // per_row)


class MappedData:
    """A split of a streamed dataset: row numbers into a :class:`RowSource`, plus labels/factors."""

    def __init__(self, source: RowSource, rows: torch.Tensor, y: Optional[torch.Tensor] = None,
                 factors: Optional[torch.Tensor] = None, device: Optional[torch.device] = None, augment=None):
        self.source, self.rows, self.y, self.factors, self.device = source, rows, y, factors, device
        self.augment = augment  # a training split's (vaekit.data.augment), applied to shuffled batches

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @property
    def x(self) -> "MappedRows":
        return MappedRows(self)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.source.info.shape))

    def take(self, index) -> torch.Tensor:
        """The examples at positions ``index`` of this split, float32, on this split's device."""
        rows = self.rows[torch.as_tensor(index, dtype=torch.long)]
        x = self.source.examples(rows.numpy())
        return x if self.device is None else x.to(self.device)

    def subset(self, index: torch.Tensor):
        """The examples at ``index``: read into a :class:`TensorData` when they take at most
        :data:`CHUNK_BYTES` as float32 (a plot's or a metric's sample), else an index view."""
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        rows = self.rows[index]
        if rows.numel() <= self.source.chunk_rows():
            return TensorData(self.take(index), pick(self.y), pick(self.factors))
        return MappedData(self.source, rows, pick(self.y), pick(self.factors), self.device)

    def to(self, device) -> "MappedData":
        """Batches are read on the CPU and moved to ``device``; labels move now."""
        device = torch.device(device)
        y = None if self.y is None else self.y.to(device)
        return MappedData(self.source, self.rows, y, self.factors, None if device.type == "cpu" else device,
                          self.augment)

    def read_batches(self, indices: list) -> Iterator[torch.Tensor]:
        """The examples at each of ``indices`` (slices or index tensors of this split), in order; a source
        that decodes in worker processes (an image folder) reads them ahead."""
        rows = [self.rows[i].numpy() for i in indices]
        read = getattr(self.source, "read_batches", None)
        for x in (read(rows) if read is not None else (self.source.examples(r) for r in rows)):
            yield x if self.device is None else x.to(self.device)

    def chunks(self, rows: Optional[int] = None) -> Iterator[torch.Tensor]:
        """The whole split as float32 tensors of at most ``rows`` examples (default: ~16 MB each)."""
        step = rows or self.source.chunk_rows()
        yield from self.read_batches([slice(start, start + step) for start in range(0, len(self), step)])


class MappedRows:
    """``data.x`` of a :class:`MappedData`: indexing reads those rows; whole-split reductions
    (``min``, ``max``, ``numel``) run chunk by chunk. Anything else a tensor has would need the
    whole split in memory at once, and says so."""

    def __init__(self, data: MappedData):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, int):
            return self.data.take([key])[0]
        if isinstance(key, slice):
            return self.data.take(torch.arange(*key.indices(len(self.data))))  # the slice's rows only
        key = torch.as_tensor(key)
        if key.dtype == torch.bool:
            key = torch.nonzero(key).flatten()
        return self.data.take(key)

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: Optional[int] = None):
        return self.shape if dim is None else self.shape[dim]

    dtype = torch.float32

    @property
    def device(self) -> torch.device:
        return self.data.device or torch.device("cpu")

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def min(self) -> torch.Tensor:
        return torch.stack([c.min() for c in self.data.chunks()]).min()

    def max(self) -> torch.Tensor:
        return torch.stack([c.max() for c in self.data.chunks()]).max()

    def __getattr__(self, attr: str):
        if hasattr(torch.Tensor, attr):
            n, gb = len(self.data), self.numel() * 4 / 1e9
            raise VaekitError(
                f"this step needs all {n} examples of {self.data.source.name} in memory at once ({gb:.2g} GB as "
                f"float32; it asked for x.{attr}), but they are streamed from disk; use a smaller split or "
                "subset, or load the data in memory (stream=False, CLI --no-stream) if it fits")
        raise AttributeError(attr)
