"""The in-memory data types every dataset becomes."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Optional

import torch


@dataclass
class TensorData:
    """Examples ``x`` (N, *shape) float32, optional integer labels ``y`` (N,) and, for data with
    known generative factors (``shapes``), their values ``factors`` (N, F) float32. A training split
    may carry an ``augment`` (:class:`vaekit.data.augment.Augment`), applied to shuffled batches.
    ``covariates``: int64 codes (N, m) of categorical covariates (:mod:`vaekit.data.covariates`)."""

    x: torch.Tensor
    y: Optional[torch.Tensor] = None
    factors: Optional[torch.Tensor] = None
    augment: Optional[Any] = None
    covariates: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: torch.Tensor) -> "TensorData":
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return TensorData(self.x[index], pick(self.y), pick(self.factors), covariates=pick(self.covariates))

    def to(self, device) -> "TensorData":
        """Examples and labels on ``device`` (factors stay where they are)."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return TensorData(self.x.to(device), move(self.y), self.factors, self.augment, move(self.covariates))

    @property
    def c(self) -> Optional[torch.Tensor]:
        """What a model is conditioned on: the labels, or labels and covariates packed (B, 1 + m)."""
        from .covariates import pack

        return pack(self.y, self.covariates)

    def chunks(self, rows: Optional[int] = None) -> Iterator[torch.Tensor]:
        """The examples in pieces of at most ``rows`` (default: all at once); as
        :meth:`MappedData.chunks`, so whole-split checks work on streamed data too."""
        step = rows or max(1, len(self))
        for start in range(0, len(self), step):
            yield self.x[start:start + step]


@dataclass
class DataInfo:
    """What a model needs to know about its data; saved in the run's config.json.

    kind: "image" (x in [0, 1], shape (C, H, W)) or "table" (x standardized, shape (D,)).
    mean/std: per-feature statistics of the training split used to standardize tables;
    ``denormalize`` maps model output back to the original units. A table of counts
    (``extra["counts"]``) keeps its raw whole numbers: no mean and std.
    """

    name: str
    kind: str
    shape: tuple
    num_classes: Optional[int] = None
    class_names: Optional[list] = None
    columns: Optional[list] = None
    mean: Optional[list] = None
    std: Optional[list] = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DataInfo":
        d = dict(d)
        d["shape"] = tuple(d["shape"])
        return cls(**d)

    @property
    def counts(self) -> bool:
        """True for count data, kept as raw whole numbers (:mod:`vaekit.data.covariates`)."""
        return bool(self.extra.get("counts"))

    @property
    def covariates(self) -> list:
        """``[{"name": "batch", "categories": [...]}, ...]``: the categorical covariates, in order."""
        return list(self.extra.get("covariates") or [])

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return x
        return (x - torch.tensor(self.mean, dtype=x.dtype)) / torch.tensor(self.std, dtype=x.dtype)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return x
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device)
        return x * std + mean


@dataclass
class DataSplits:
    """Train / validation / test splits of one dataset plus its :class:`DataInfo`; the splits are
    :class:`TensorData`, or ``vaekit.data.mapped.MappedData`` for streamed data."""

    train: TensorData
    val: TensorData
    test: TensorData
    info: DataInfo
