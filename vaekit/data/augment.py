"""Augmentation of the training split: ``--augment flip,crop``.

- ``flip``: each image is mirrored left-right with probability 1/2.
- ``crop``: each image is shifted by a random offset of up to ``pad = max(1, round(min(H, W) / 8))``
  pixels in each direction, the border filled by reflection; that is, a random H x W crop of the image
  padded by ``pad`` (4 pixels at 32 x 32, as He et al. 2016, "Deep residual learning", augment
  CIFAR-10; reflection padding as Zagoruyko & Komodakis 2016, "Wide residual networks"). A VAE
  reconstructs its input, so the crop keeps the image's size and scale rather than zooming in as
  Inception's random resized crop does; reflected borders keep the image statistics that a black
  border would change.

Only batches drawn with ``shuffle`` and a ``generator`` (the trainer's training batches) are
augmented; validation, test, plots and metrics see the deterministic transform alone. The random
numbers come from the run's shuffle generator: one seed drawn after each epoch's permutation, and
batch b's draws from a generator seeded with seed + b, so a run resumed mid-epoch draws exactly the
augmentations of the batches it has left, and every rank of a multi-process run draws the whole
global batch's and keeps its own rows (the same numbers as one process).
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import torch
import torch.nn.functional as F

from ..errors import VaekitError
from ..image_options import AUGMENTATIONS

KINDS = AUGMENTATIONS
SEED_RANGE = 1 << 62

class Augment:
    """Random flips and crops of image batches (N, C, H, W); see the module's notes."""

    def __init__(self, kinds: Iterable[str]):
        self.kinds = tuple(kinds)

    def epoch_seed(self, generator: torch.Generator) -> int:
        return int(torch.randint(SEED_RANGE, (), generator=generator))

    def __call__(self, x: torch.Tensor, seed: int, batch: int, shard: Tuple[int, int] = (0, 1),
                 size: Optional[int] = None) -> torch.Tensor:
        """Batch number ``batch`` of an epoch whose seed is ``seed``; ``x`` holds rows rank, rank + world, ...
        of a global batch of ``size`` (default: ``x`` is the whole batch)."""
        rank, world = shard
        size = x.shape[0] if size is None else size
        g = torch.Generator().manual_seed(seed + batch)
        h, w = x.shape[-2:]
        pad = max(1, round(min(h, w) / 8))
        flips = torch.rand(size, generator=g)[rank::world] < 0.5
        offsets = torch.randint(0, 2 * pad + 1, (size, 2), generator=g)[rank::world]
        if "flip" in self.kinds:
            x = torch.where(flips.to(x.device)[:, None, None, None], x.flip(-1), x)
        if "crop" in self.kinds and min(h, w) > pad:
            padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
            offsets = offsets.to(x.device)
            rows = (offsets[:, 0, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
            cols = (offsets[:, 1, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
            b = torch.arange(x.shape[0], device=x.device)[:, None, None, None]
            c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[b, c, rows, cols]
        return x

    def __repr__(self) -> str:
        return f"Augment({','.join(self.kinds)})"


def with_augment(split, kinds: Optional[list], kind: str, name: str):
    """``split`` (a training split) with ``kinds`` of augmentation attached; tables refuse."""
    if not kinds:
        return split
    if kind != "image":
        raise VaekitError(f"--augment applies to images, but {name} is a table; drop --augment")
    split.augment = Augment(kinds)
    return split
