"""Mini-batches straight from in-memory tensors, or read from disk for streamed data.

Indexing a shuffled permutation is far faster than a per-item DataLoader for small
images (no per-example Python call, no collation). A streamed split
(:class:`vaekit.data.mapped.MappedData`) answers the same ``data.x[idx]`` by reading
those rows from its .npy files.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence, Tuple, Union

import torch

from .covariates import pack
from .types import TensorData


# Examples per no-grad batch (validation, evaluation, encoding) hold at most this many input values: convolutional
# networks' feature maps grow with the image, and a batch of 512 64-px colour images in the resnet recipe holds GBs
# (measured in README, "Data larger than memory"). 2^20 values keeps batches of 512 up to 2,048 values an example
# (digits, MNIST 28x28), and gives 256 at 64x64 grey and 32x32x3, 128 at 48x48x3, 64 at 64x64x3.
INFERENCE_VALUES = 2 ** 20


def inference_batch_size(data_or_shape: Union[TensorData, Sequence[int]], most: int = 512) -> int:
    """Examples per batch of a pass without gradients: ``most``, or the largest power of two whose batch holds at
    most :data:`INFERENCE_VALUES` input values, at least 1. ``data_or_shape``: data (its examples' shape) or the
    shape of one example."""
    shape = data_or_shape.x.shape[1:] if hasattr(data_or_shape, "x") else data_or_shape
    fits = max(1, INFERENCE_VALUES // max(1, math.prod(int(s) for s in shape)))
    return max(1, min(int(most), 1 << (fits.bit_length() - 1)))


def iterate_batches(
    data: TensorData,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: Optional[torch.Generator] = None,
    device: Optional[torch.device] = None,
    shard: Tuple[int, int] = (0, 1),
    skip: int = 0,
    batches: Optional[int] = None,
) -> Iterator[Tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """Yield ``(x, y)`` batches; ``y`` is None for unlabelled data, and for data with covariates the labels
    and covariates packed (B, 1 + m) (:func:`vaekit.data.covariates.pack`), the ``c`` models read.

    With ``shuffle`` the order comes from ``generator`` so a saved generator state
    reproduces it exactly (this is what makes ``--resume`` exact).

    ``shard=(rank, world)``: every process draws the same permutation and global batches of
    ``batch_size``; rank r keeps the examples at positions r, r + world, ... of each global
    batch, so the ranks together see exactly the batches of a single process.

    ``skip``: leave out the first ``skip`` batches without reading them (the permutation is
    still drawn in full): resuming from a checkpoint taken mid-epoch.

    ``batches``: read no more than the first ``batches`` batches (after ``skip``): a check that takes one batch
    of streamed images then decodes it in this process instead of starting worker processes that decode ahead.

    A training split that carries an ``augment`` has its shuffled batches augmented with draws from
    ``generator`` (:mod:`vaekit.data.augment`).

    In-order batches of in-memory data are views of it (no copy): change them out of place.
    """
    rank, world = shard
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else None
    augment = getattr(data, "augment", None) if shuffle and generator is not None else None
    seed = augment.epoch_seed(generator) if augment is not None else None
    starts = range(skip * batch_size, n, batch_size)[:batches]
    if order is None:  # in order: views, no copy
        indices = [slice(start + rank, min(start + batch_size, n), world) for start in starts]
    else:
        indices = [order[start : start + batch_size][rank::world] for start in starts]
    read = getattr(data, "read_batches", None)  # streamed images: decoded ahead in worker processes
    xs = read(indices) if read is not None else (rows(data.x, idx) for idx in indices)
    for start, idx, x in zip(starts, indices, xs):
        y = None if data.y is None else rows(data.y, idx)
        if getattr(data, "covariates", None) is not None:
            y = pack(y, rows(data.covariates, idx))
        if augment is not None:
            x = augment(x, seed, start // batch_size, shard, min(batch_size, n - start))
        if device is not None:
            x = x.to(device, non_blocking=True)
            y = None if y is None else y.to(device, non_blocking=True)
        yield x, y


def rows(values, idx):
    """``values[idx]`` for a slice or an index tensor; an in-memory tensor is gathered with
    ``index_select`` (the index moved to its device: the shuffle is drawn on the CPU), which copies
    whole rows where advanced indexing goes through torch's general indexing kernel
    (benchmarks/techniques.py ``gather`` times both; the README has the ratio). Streamed data reads
    its own rows."""
    if isinstance(idx, torch.Tensor) and isinstance(values, torch.Tensor):
        return values.index_select(0, idx.to(values.device))
    return values[idx]
