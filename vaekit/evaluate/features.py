"""A feature space for Fréchet distance: a small classifier trained once per dataset, cached.

FID (Heusel et al. 2017) measures distances in the features of an ImageNet Inception network,
which needs a 100 MB weights file and means little for 8x8 digits or tables. ``fd`` instead
trains a small classifier on the labelled training split (a conv net for images, an MLP for
tables) and uses its penultimate layer, the usual substitute on MNIST-like data. Its accuracy on
the evaluated data is reported with every number, so users can see the features are meaningful.
The net is deterministic from a seed and cached as safetensors under the user cache,
``$XDG_CACHE_HOME/vaekit/feature-nets/``, keyed by the dataset's name, a hash of the
training data, the architecture version and the seed.
"""
from __future__ import annotations

import hashlib
import math
import re
import time
from pathlib import Path
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_model
from torch import nn

from ..data.builtin import cache_dir
from ..data.types import TensorData
from ..rundir import save_weights

ARCH_VERSION = 1    # bump when FeatureNet or its training changes: old cache files are then ignored
FEATURES = 64       # size of the penultimate layer, the feature space
MAX_SIDE = 32       # larger images are average-pooled down to at most this side first
BATCH, LR, MAX_EPOCHS, EXAMPLES = 128, 2e-3, 30, 200_000  # ~EXAMPLES seen, in 1..MAX_EPOCHS epochs


class FeatureNet(nn.Module):
    """Classifier whose ``features(x)`` (B, FEATURES) is the penultimate layer.

    Images (C, H, W): three 3x3 convs (16, 32, 64 channels; stride 2, the first one stride 1 on
    images under 16 pixels a side), pooled to at most 4x4, then a linear layer. Tables (D,): an MLP
    D -> 256 -> FEATURES.
    """

    def __init__(self, shape: Tuple[int, ...], num_classes: int):
        super().__init__()
        self.image = len(shape) == 3
        if self.image:
            self.side = _input_side(shape[1:])
            first = 2 if min(self.side) >= 16 else 1
            conv = [_conv_out(_conv_out(_conv_out(s, first), 2), 2) for s in self.side]
            pooled = tuple(min(s, 4) for s in conv)  # the side after the convs, pooled to at most 4
            self.body = nn.Sequential(
                nn.Conv2d(shape[0], 16, 3, stride=first, padding=1), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(pooled) if pooled != tuple(conv) else nn.Identity(), nn.Flatten(),
                nn.Linear(64 * pooled[0] * pooled[1], FEATURES), nn.ReLU())
        else:
            self.body = nn.Sequential(nn.Linear(math.prod(shape), 256), nn.ReLU(),
                                      nn.Linear(256, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.image and tuple(x.shape[-2:]) != self.side:
            x = F.adaptive_avg_pool2d(x, self.side)
        return self.body(x if self.image else x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _input_side(side) -> Tuple[int, int]:
    """(H, W) scaled down, keeping the aspect ratio, so that neither exceeds MAX_SIDE."""
    scale = min(1.0, MAX_SIDE / max(side))
    return tuple(max(1, round(s * scale)) for s in side)


def _conv_out(side: int, stride: int) -> int:
    return (side - 1) // stride + 1  # a 3x3 conv with padding 1


def fingerprint(data: TensorData) -> str:
    """sha256 of the examples and labels (values, shapes and dtypes)."""
    h = hashlib.sha256()
    for t, pieces in ((data.x, data.chunks()), (data.y, [data.y])):  # streamed data: ~16 MB at a time
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        for piece in pieces:
            h.update(memoryview(piece.detach().cpu().contiguous().numpy()).cast("B"))
    return h.hexdigest()


def num_classes_of(data: TensorData, declared: Optional[int] = None) -> int:
    return max(int(declared or 0), int(data.y.max()) + 1)


def train_classifier(train: TensorData, num_classes: int, seed: int = 0) -> FeatureNet:
    """Adam with a linear decay to 0 over ~EXAMPLES examples (at least 1 epoch, at most MAX_EPOCHS).

    Deterministic: initialisation and batch order come from ``seed``; the global RNG is untouched.
    """
    n = len(train)
    epochs = min(MAX_EPOCHS, math.ceil(EXAMPLES / n))  # digits: 30 epochs; Fashion-MNIST: 4
    steps = epochs * math.ceil(n / BATCH)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FeatureNet(tuple(train.x.shape[1:]), num_classes)
        order = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), lr=LR)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / steps)
        net.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=order)
            for start in range(0, n, BATCH):
                idx = perm[start:start + BATCH]
                loss = F.cross_entropy(net(train.x[idx]), train.y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return net.eval().requires_grad_(False)


def cache_path(name: str, digest: str, seed: int) -> Path:
    """``<cache>/feature-nets/<dataset>-<data hash>-v<arch>-seed<seed>.safetensors``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name)).name)[:60] or "data"
    return cache_dir("feature-nets") / f"{slug}-{digest[:16]}-v{ARCH_VERSION}-seed{seed}.safetensors"


def feature_net(train: TensorData, name: str, num_classes: Optional[int] = None,
                seed: int = 0) -> Tuple[FeatureNet, str, Path]:
    """The cached classifier for this training split, trained and saved (atomically) if absent.

    Returns the net (eval mode, CPU), its identity ``vaekit-classifier:<name>:<hash8>`` and the
    cache file. A cache file that cannot be read (truncated, another version) is retrained.
    """
    digest = fingerprint(train)
    k = num_classes_of(train, num_classes)
    path = cache_path(name, digest, seed)
    ident = f"vaekit-classifier:{Path(str(name)).name}:{digest[:8]}"
    if path.is_file():
        net = FeatureNet(tuple(train.x.shape[1:]), k)
        try:
            load_model(net, str(path), strict=True)
            return net.eval().requires_grad_(False), ident, path
        except (SafetensorError, OSError, RuntimeError, ValueError):
            pass  # damaged or stale: train again below
    start = time.perf_counter()
    net = train_classifier(train, k, seed)
    meta = {"dataset": str(name), "sha256": digest, "arch_version": str(ARCH_VERSION), "seed": str(seed),
            "classes": str(k), "train_seconds": f"{time.perf_counter() - start:.2f}"}
    save_weights(path, net, meta)
    return net, ident, path


@torch.no_grad()
def extract(net: FeatureNet, x: torch.Tensor, batch_size: int = 1024) -> Tuple[torch.Tensor, torch.Tensor]:
    """Features (N, FEATURES) float64 and predicted classes (N,) of examples x, on the CPU."""
    feats, preds = [], []
    for start in range(0, x.shape[0], batch_size):
        f = net.features(x[start:start + batch_size].float().cpu())
        feats.append(f.double())
        preds.append(net.head(f).argmax(1))
    return torch.cat(feats), torch.cat(preds)
