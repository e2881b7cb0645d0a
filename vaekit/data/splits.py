"""Deterministic hold-out splits, stratified by label when labels exist."""
from __future__ import annotations

import math
from typing import Optional

import torch

TEST_FRACTION = 0.2  # used when a dataset has no official test split
TEST_SEED = 0  # fixed, so the test split never depends on the run's seed


def holdout_count(n: int, fraction: float) -> int:
    """round(n * fraction), halves rounded up."""
    return int(math.floor(n * fraction + 0.5))


def split_indices(n: int, fraction: float, seed: int, labels: Optional[torch.Tensor] = None) -> tuple:
    """Return sorted index tensors ``(keep, held)`` with ``holdout_count(n, fraction)`` held out.

    With ``labels`` each class gives its share of the held-out examples (largest remainder),
    so class proportions match; the order within each class comes from ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    k = holdout_count(n, fraction)
    if labels is None or k == 0:
        held = torch.randperm(n, generator=g)[:k]
    else:
        classes, counts = torch.unique(labels, return_counts=True)
        quota = counts.double() * k / n
        take = quota.floor().long()
        order = torch.argsort(quota - take, descending=True, stable=True)
        take[order[: k - int(take.sum())]] += 1
        parts = []
        for c, t in zip(classes.tolist(), take.tolist()):
            members = torch.nonzero(labels == c).flatten()
            parts.append(members[torch.randperm(len(members), generator=g)[:t]])
        held = torch.cat(parts)
    keep = torch.ones(n, dtype=torch.bool)
    keep[held] = False
    return torch.nonzero(keep).flatten(), held.sort().values


def random_test_split(labelled: bool) -> str:
    """How run configs describe the test split when a dataset has none of its own."""
    stratified = ", stratified by label" if labelled else ""
    return f"random {TEST_FRACTION:.0%} (seed {TEST_SEED}{stratified})"


def split_sizes(n: int, n_test_official: Optional[int], val_fraction: float) -> tuple:
    """``(train, val, test)`` sizes :func:`split_indices` gives for ``n`` examples."""
    n_test = n_test_official if n_test_official is not None else holdout_count(n, TEST_FRACTION)
    n_trainval = n if n_test_official is not None else n - n_test
    n_val = holdout_count(n_trainval, val_fraction)
    return n_trainval - n_val, n_val, n_test
