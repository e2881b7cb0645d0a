"""``vaekit serve --onnx DIR``: the app of app.py over the ONNX files of ``vaekit export --format onnx``.

It needs numpy and onnxruntime, not torch. :class:`~vaekit.export.onnx_backend.OnnxModel` works in the
model's units (a table standardized); the server, like the PyTorch backend, speaks the data's own
units, so a table's columns are standardized on the way in and back on the way out (export.json's
``transform``). The explorer shows no data points: an export folder holds no data.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..errors import VaekitError



class OnnxServing:
    """The serving interface (``info``, ``encode``, ``decode``, ``sample``, ``reconstruct``) over an OnnxModel."""

    def __init__(self, folder, threads: Optional[int] = None):
        try:
            from ..export.onnx_backend import OnnxModel
        except ImportError:
            raise VaekitError("vaekit serve --onnx needs onnxruntime: pip install vaekit[export]") from None
        self.onnx = OnnxModel(folder, threads=threads)
        transform = self.onnx.info()["transform"]
        self.kind = transform["kind"]
        self.mean = np.asarray(transform["mean"], np.float32) if transform.get("mean") is not None else None
        self.std = np.asarray(transform["std"], np.float32) if transform.get("std") is not None else None

    def info(self) -> dict:
        s = self.onnx.info()
        cannot_sample = None if s["can_sample"] else f"its {s['prior']} prior has no sampler outside torch"
        return {"variant": s["variant"], "data_kind": self.kind, "data_shape": s["data_shape"],
                "latent_shape": s["latent_shape"], "latent_dim": s["latent_dim"], "num_classes": s["num_classes"],
                "class_names": s["class_names"], "backend": "onnx",
                "can": {"encode": None, "sample": cannot_sample, "posterior_variance": None,
                        "latent_grid": None if len(s["latent_shape"]) == 1 else "its latent is a map"}}

    def _in(self, x: np.ndarray) -> np.ndarray:
        return x if self.mean is None else (np.asarray(x, np.float32) - self.mean) / self.std

    def _out(self, x: np.ndarray) -> np.ndarray:
        return x if self.mean is None else x * self.std + self.mean

    def encode(self, x: np.ndarray, label=None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        return self.onnx.encode(self._in(x), label)

    def decode(self, z: np.ndarray, label=None) -> np.ndarray:
        return self._out(self.onnx.decode(z, label))

    def sample(self, n: int, label=None, seed=None) -> np.ndarray:
        return self._out(self.onnx.sample(n, label, seed))

    def reconstruct(self, x: np.ndarray, label=None) -> np.ndarray:
        return self._out(self.onnx.reconstruct(self._in(x), label))
