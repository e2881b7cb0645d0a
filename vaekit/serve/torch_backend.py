"""The PyTorch backend of ``vaekit serve``: a run's model behind the interface of backend.py."""
from __future__ import annotations

import threading
from typing import Optional, Tuple

import numpy as np
import torch

from ..models.base import distribution_mean
from ..run import Run

CAPABILITIES = ("encode", "sample", "posterior_variance", "latent_grid")


class TorchBackend:
    """A run's model (on the CPU by default), evaluated without gradients."""

    def __init__(self, run: Run):
        self.run, self.model, self.data = run, run.model.eval(), run.info
        self._seeded = threading.Lock()  # sample seeds torch's global generator
        self.threads, self._local = torch.get_num_threads(), threading.local()
        # what the model cannot do, asked once: Model.why_not walks every module (half of a one-example encode)
        self.why_not = {name: self.model.why_not(name) for name in CAPABILITIES}

    def _in_this_thread(self) -> None:
        """torch.set_num_threads binds the calling thread's OpenMP team only: a thread started later (the
        server's worker, a test's server thread) had the default of one per core, and on busy cores its
        idle OpenMP threads spun at each op: a one-code decode took 14 ms of wall time there, not 0.1."""
        if not getattr(self._local, "ready", False):
            torch.set_num_threads(self.threads)
            self._local.ready = True

    def info(self) -> dict:
        model, data = self.model, self.data
        return {"variant": model.name, "data_kind": data.kind, "data_shape": list(data.shape),
                "latent_shape": list(model.latent_shape), "latent_dim": int(model.latent_dim),
                "num_classes": model.num_classes or None, "class_names": data.class_names,
                "can": dict(self.why_not)}

    def _require(self, capability: str, what: str) -> None:
        if self.why_not[capability]:  # the model words the refusal (and walks its modules only then)
            self.model.require(capability, what)

    def _labels(self, label) -> Optional[torch.Tensor]:
        return None if label is None else torch.as_tensor(np.asarray(label), dtype=torch.long)

    def _data(self, x: np.ndarray) -> torch.Tensor:
        x = self.model.check_shape(self.data.normalize(torch.from_numpy(np.ascontiguousarray(x, np.float32))))
        self.model.check_data(x, "the request's examples")
        return x

    def _out(self, x: torch.Tensor) -> np.ndarray:
        return self.data.denormalize(x.float().cpu()).numpy()

    @torch.inference_mode()
    def encode(self, x: np.ndarray, label=None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        self._in_this_thread()
        self._require("encode", "/encode")
        q = self.model.encode(self._data(x), self._labels(label))
        mean = distribution_mean(q).flatten(1).float().cpu().numpy()
        if self.why_not["posterior_variance"]:
            return mean, None
        return mean, q.variance.flatten(1).float().cpu().numpy()

    @torch.inference_mode()
    def decode(self, z: np.ndarray, label=None) -> np.ndarray:
        self._in_this_thread()
        z = torch.from_numpy(np.ascontiguousarray(z, np.float32))
        return self._out(self.model.decode(z, self._labels(label)).mean)

    @torch.inference_mode()
    def sample(self, n: int, label: Optional[int] = None, seed: Optional[int] = None) -> np.ndarray:
        self._in_this_thread()
        self._require("sample", "/sample")
        c = None if label is None else torch.full((n,), int(label), dtype=torch.long)
        with self._seeded:
            torch.manual_seed(int(np.random.SeedSequence().entropy % 2 ** 63) if seed is None else seed)
            return self._out(self.model.sample(n, c))

    @torch.inference_mode()
    def reconstruct(self, x: np.ndarray, label=None) -> np.ndarray:
        self._in_this_thread()
        self._require("encode", "/reconstruct")
        return self._out(self.model.reconstruct(self._data(x), self._labels(label)))
