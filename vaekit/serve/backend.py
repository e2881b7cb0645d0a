"""What the server asks of a model: the backend interface, kept apart from torch so the web app
(vaekit/serve/app.py) can serve any backend, the PyTorch one (torch_backend.py) or an exported one.

Arrays are numpy float32 in the data's own units (images in [0, 1], tables in their original
units); codes are flat, (B, latent_dim), a latent map's C * h * w values in one row. ``label`` is the
class labels (B,) int64 of a conditional model, None otherwise.
"""
from __future__ import annotations

from typing import Optional, Protocol, Tuple

import numpy as np


class Backend(Protocol):
    def info(self) -> dict:
        """What the model is: keys variant, data_kind, data_shape, latent_shape, latent_dim, num_classes,
        class_names, and can (a dict: encode, sample, posterior_variance, latent_grid -> the one-line
        reason it cannot, or None)."""

    def encode(self, x: np.ndarray, label: Optional[np.ndarray] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """The posterior's mean and variance (B, latent_dim) of each example (variance None where the
        posterior has none)."""

    def decode(self, z: np.ndarray, label: Optional[np.ndarray] = None) -> np.ndarray:
        """The likelihood's mean (B, *data_shape) of each code."""

    def sample(self, n: int, label: Optional[int] = None, seed: Optional[int] = None) -> np.ndarray:
        """n draws decoded from the prior (the likelihood's mean), reproducible by ``seed``."""

    def reconstruct(self, x: np.ndarray, label: Optional[np.ndarray] = None) -> np.ndarray:
        """The decoded posterior mean (B, *data_shape) of each example."""
