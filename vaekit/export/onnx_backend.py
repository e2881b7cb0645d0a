"""Serve an exported run from its ONNX files with numpy and onnxruntime alone: no torch is imported.

``OnnxModel(dir)`` reads ``dir``/export.json (written by ``vaekit export RUN --format onnx``) and has the
interface of vaekit's PyTorch serving backend: ``info``, ``encode``, ``decode``, ``sample``, ``reconstruct``.
Inputs are the model's own units (the transform in ``info()["transform"]``: images in [0, 1], tables
standardized); outputs are float32 arrays.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import VaekitError

CONTRACT = "export.json"


class OnnxModel:
    """An exported encoder/decoder pair and the prior to sample codes from."""

    def __init__(self, directory, threads: Optional[int] = None):
        """``threads``: onnxruntime's intra-op threads (default: its own choice, all cores)."""
        self.dir = Path(directory)
        path = self.dir / CONTRACT
        if not path.is_file():
            raise VaekitError(f"{self.dir} has no {CONTRACT}: export a run first (vaekit export RUN --format onnx "
                              f"--out {self.dir})")
        try:
            self.spec = json.loads(path.read_text())
            fmt = self.spec["format"]
        except (ValueError, KeyError, TypeError):
            raise VaekitError(f"{path} is not an export contract; export the run again") from None
        if fmt != "onnx":
            raise VaekitError(f"{self.dir} holds a {fmt} export; serving without torch needs --format onnx")
        try:
            import onnxruntime
        except ImportError:
            raise VaekitError("serving ONNX files needs onnxruntime, which is not installed: "
                              "pip install vaekit[export]") from None
        self._sessions = {}
        for which in ("encoder", "decoder"):
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3  # errors only: no optimizer notes on stderr
            if threads:
                options.intra_op_num_threads = int(threads)
            self._sessions[which] = onnxruntime.InferenceSession(
                str(self.dir / self.spec[which]["file"]), options, providers=["CPUExecutionProvider"])
        self.data_shape = tuple(self.spec["encoder"]["inputs"][0]["shape"][1:])
        self.latent_shape = tuple(self.spec["latent"]["shape"])
        self.num_classes = self.spec.get("num_classes")

    # -- the serving interface ------------------------------------------------------------------
    def info(self) -> dict:
        """What the model is: variant, shapes, classes, posterior, likelihood, prior kind, data transform."""
        s = self.spec
        return {"variant": s["variant"], "backend": "onnx", "data_shape": list(self.data_shape),
                "latent_shape": list(self.latent_shape), "latent_dim": s["latent"]["dim"],
                "num_classes": self.num_classes, "class_names": s.get("class_names"),
                "conditional": bool(self.num_classes), "posterior": s["posterior"], "likelihood": s["likelihood"],
                "prior": s["prior"]["kind"], "can_sample": s["prior"]["kind"] != "unsupported",
                "transform": s["transform"]}

    def encode(self, x: np.ndarray, label=None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(mean, var) of q(z | x) for x (B, *data_shape): var is zeros for a point-mass posterior and None
        where the posterior has no closed-form variance (``info()["posterior"]["note"]`` says why)."""
        x = self._check(x, self.data_shape, "x")
        outputs = self._run("encoder", x, label)
        var = outputs.get(self.spec["posterior"]["var"] or "")
        if var is None and self.spec["posterior"].get("deterministic"):
            var = np.zeros_like(outputs["mean"])
        return outputs["mean"], var

    def decode(self, z: np.ndarray, label=None) -> np.ndarray:
        """E[x | z] (B, *data_shape) for codes z (B, *latent_shape) or flattened (B, latent_dim)."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim == 2 and len(self.latent_shape) > 1 and z.shape[1] == self.spec["latent"]["dim"]:
            z = z.reshape(z.shape[0], *self.latent_shape)
        return self._run("decoder", self._check(z, self.latent_shape, "z"), label)["mean"]

    def sample(self, n: int, label: Optional[int] = None, seed=None) -> np.ndarray:
        """n new examples: codes from the prior (numpy's generator with ``seed``), decoded to their mean."""
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise VaekitError(f"n must be a positive integer, got {n!r}")
        z = sample_prior(self.spec["prior"], int(n), np.random.default_rng(seed))
        return self.decode(z.reshape(int(n), *self.latent_shape), label)

    def reconstruct(self, x: np.ndarray, label=None) -> np.ndarray:
        """Decode the posterior mean of each x."""
        mean, _ = self.encode(x, label)
        return self.decode(mean, label)

    # -- helpers --------------------------------------------------------------------------------
    def _labels(self, label, n: int) -> List[np.ndarray]:
        if not self.num_classes:
            if label is not None:
                raise VaekitError(f"the {self.spec['variant']} model is not conditional: give no label")
            return []
        if label is None:
            raise VaekitError(f"this is a conditional VAE over {self.num_classes} classes: give a label")
        labels = np.asarray(label)
        if labels.dtype.kind not in "iu" or labels.ndim > 1 or labels.size not in (1, n):
            raise VaekitError(f"label must be one integer or {n} integers, got {label!r}")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise VaekitError(f"label out of range; this model knows labels 0..{self.num_classes - 1}")
        return [np.broadcast_to(labels.reshape(-1).astype(np.int64), (n,)).copy()]

    def _run(self, which: str, first: np.ndarray, label) -> Dict[str, np.ndarray]:
        session = self._sessions[which]
        names = [i.name for i in session.get_inputs()]
        feeds = dict(zip(names, [first, *self._labels(label, first.shape[0])]))
        return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))

    @staticmethod
    def _check(a, shape, name: str) -> np.ndarray:
        a = np.asarray(a)
        if a.dtype.kind not in "fiu":
            raise VaekitError(f"{name} must be numbers, got dtype {a.dtype}")
        a = a.astype(np.float32)
        if a.ndim != len(shape) + 1 or tuple(a.shape[1:]) != tuple(shape) or a.shape[0] < 1:
            want = ", ".join(map(str, shape))
            raise VaekitError(f"{name} must have shape (B, {want}), got {tuple(a.shape)}")
        if not np.isfinite(a).all():
            raise VaekitError(f"{name} has NaN or infinite values")
        return a


def sample_prior(spec: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """n flattened codes (n, D) from a prior of export.json (:mod:`vaekit.export.contract`'s families)."""
    kind = spec["kind"]
    if kind == "gaussian":
        loc = np.asarray(spec["loc"])
        eps = rng.standard_normal((n, loc.size))
        if "scale_tril" in spec:  # z = mu + L eps, L L^T = Sigma
            return (loc + eps @ np.asarray(spec["scale_tril"]).T).astype(np.float32)
        return (loc + np.asarray(spec["scale"]) * eps).astype(np.float32)
    if kind == "mixture":  # a component k ~ softmax(logits), then its diagonal Gaussian
        loc, scale = np.asarray(spec["loc"]), np.asarray(spec["scale"])
        k = rng.choice(len(loc), size=n, p=_softmax(np.asarray(spec["logits"])))
        return (loc[k] + scale[k] * rng.standard_normal((n, loc.shape[1]))).astype(np.float32)
    if kind == "concrete":  # y = softmax((logits + g) / T), g ~ Gumbel(0, 1) (Jang et al. 2017, eq. 1)
        logits, sizes = np.asarray(spec["logits"]), spec["sizes"]
        g = -np.log(-np.log(rng.uniform(np.finfo(np.float64).tiny, 1.0, (n, logits.size))))
        y, start = (logits + g) / spec["temperature"], 0
        parts = []
        for k in sizes:
            parts.append(_softmax(y[:, start:start + k]))
            start += k
        return np.concatenate(parts, axis=1).astype(np.float32)
    if kind == "one-hot":  # a uniform category
        return np.eye(spec["categories"], dtype=np.float32)[rng.integers(spec["categories"], size=n)]
    if kind == "uniform-sphere":  # a normalized standard Gaussian is uniform on the sphere (Muller 1959)
        v = rng.standard_normal((n, spec["dim"]))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    if kind == "codebook":  # per position and stage a code index ~ softmax(logits[row]); the stages' rows summed
        p = _softmax(np.asarray(spec["logits"]))                                          # (N * S, K)
        tables = np.asarray(spec["tables"] if "tables" in spec else [spec["codebook"]], dtype=np.float32)
        stages, codes = tables.shape[0], tables.shape[1]
        u = rng.random((n, len(p), 1))
        index = np.minimum((np.cumsum(p, axis=1)[None] < u).sum(-1), codes - 1)           # (n, N * S)
        index = index.reshape(n, -1, stages)                                              # (n, N, S)
        z = sum(tables[s][index[:, :, s]] for s in range(stages))                         # (n, N, D)
        if spec.get("map_shape"):                                                         # (n, D, N) = (n, C, h * w)
            z = z.transpose(0, 2, 1)
        return np.ascontiguousarray(z).reshape(n, -1)
    if kind == "wrapped-normal":  # v ~ N(0, diag scale^2) at the origin, carried to loc and mapped onto the ball
        return _wrapped_normal(spec, n, rng)
    if kind == "concat":
        return np.concatenate([sample_prior(part, n, rng) for part in spec["parts"]], axis=1)
    raise VaekitError(f"sampling this exported model needs more than its ONNX files: {spec.get('why', kind)}")


def _wrapped_normal(spec: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """z = exp_mu(PT_0->mu(v / lambda_0)) = exp_mu(v / lambda_mu), v ~ N(0, diag scale^2), so d(mu, z) = |v|
    (Mathieu et al. 2019, sec. 3.1 and their code; Nagano et al. 2019), with the ball's maths of Ganea et al.
    2018 (lemma 2, eq. 3), as vaekit.distributions.poincare."""
    c, sc = float(spec["curvature"]), float(spec["curvature"]) ** 0.5
    mu, scale = np.asarray(spec["loc"])[None], np.asarray(spec["scale"])[None]
    lam = 2 / np.maximum(1 - c * (mu ** 2).sum(-1, keepdims=True), 1e-15)              # lambda_mu
    u = scale * rng.standard_normal((n, mu.shape[1])) / lam                          # the tangent vector at mu
    norm = np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-15)
    y = np.tanh(sc * lam * norm / 2) * u / (sc * norm)
    xy, x2, y2 = (mu * y).sum(-1, keepdims=True), (mu ** 2).sum(-1, keepdims=True), (y ** 2).sum(-1, keepdims=True)
    z = ((1 + 2 * c * xy + c * y2) * mu + (1 - c * x2) * y) / np.maximum(1 + 2 * c * xy + c ** 2 * x2 * y2, 1e-15)
    limit = (1 - 4e-3) / sc                                                          # kept inside the ball
    r = np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-15)
    return np.where(r > limit, z / r * limit, z).astype(np.float32)


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
