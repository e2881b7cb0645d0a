"""How much class information the latent means carry: k-NN and linear-probe accuracy, silhouette.

The probes are fitted on the training split's latent means and scored on the evaluated split;
the silhouette needs no fit. Each works on plain arrays (:func:`knn_accuracy`,
:func:`probe_accuracy`, :func:`silhouette`, :func:`majority_class_accuracy`), so they can be
checked without a model; the registered metrics encode with ``model.embed`` (the posterior
mean, :func:`~vaekit.models.helpers.posterior_moments`) and call them. A conditional model is
given the labels when it encodes, so its latent means may hold less class information than
a plain VAE's: the label is already in the decoder's condition.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from ..data.types import TensorData
from ..errors import VaekitError
from ..models.helpers import posterior_moments
from ..registry import METRICS
from .base import EvalContext, Metric, quiet

# what each key means; the group ``latent`` returns all of them
FIT = "fit on the training split, scored on the evaluated one; a conditional model encodes with the labels"
MEANINGS = {
    "knn_accuracy": f"k-NN accuracy of the latent means, fraction ({FIT})",
    "probe_accuracy": f"linear-probe accuracy of the standardized latent means, fraction ({FIT})",
    "silhouette": "silhouette of the evaluated split's latent means by label, -1..1 (0: the classes overlap)",
    "majority_class_accuracy": "chance level: accuracy of always guessing the training split's commonest label",
}


# -- the formulas, on arrays --------------------------------------------------------------
def knn_accuracy(train_z, train_y, z, y, k: int = 5) -> float:
    """Fraction of ``z`` (N, D) whose majority label among the ``k`` Euclidean nearest points of
    ``train_z`` (M, D) is ``y``; a tie goes to the smallest label (scikit-learn's rule)."""
    from sklearn.neighbors import KNeighborsClassifier

    train_z, train_y, z, y = _arrays(train_z, train_y, z, y)
    if not 1 <= k <= len(train_z):
        raise VaekitError(f"the k-NN accuracy needs 1 <= k <= {len(train_z)} (the training examples), got k={k}")
    with quiet():
        clf = KNeighborsClassifier(n_neighbors=k).fit(train_z, train_y)
        return float((clf.predict(z) == y).mean())


def probe_accuracy(train_z, train_y, z, y, max_iter: int = 1000) -> float:
    """Accuracy on ``z`` of a multinomial logistic regression fitted on the standardized ``train_z``.

    The linear probe of Alain & Bengio 2016 ("Understanding intermediate layers using linear
    classifier probes"): scikit-learn's default L2 penalty (C = 1), L-BFGS for at most
    ``max_iter`` steps. Standardizing uses the training split's mean and standard deviation.
    A probe stopped at ``max_iter`` before converging is still a valid (lower) accuracy, so no
    convergence warning is passed on.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_z, train_y, z, y = _arrays(train_z, train_y, z, y)
    if len(np.unique(train_y)) < 2:
        raise VaekitError("the linear probe needs at least 2 classes in the training split")
    with quiet():
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
        probe.fit(train_z, train_y)
        return float((probe.predict(z) == y).mean())


def silhouette(z, y, max_points: int = 5000, seed: int = 0) -> float:
    """Mean silhouette (b - a) / max(a, b) of the points ``z`` (N, D) grouped by label ``y``.

    Rousseeuw 1987, "Silhouettes: a graphical aid to the interpretation and validation of
    cluster analysis": a = mean Euclidean distance to the point's own class, b = to the nearest
    other class. It costs O(N^2), so at most ``max_points`` points are used, drawn without
    replacement with ``seed``.
    """
    from sklearn.metrics import silhouette_score

    z, y = _arrays(z, y)
    if len(z) > max_points:
        index = np.sort(np.random.default_rng(seed).choice(len(z), max_points, replace=False))
        z, y = z[index], y[index]
    classes = len(np.unique(y))
    if not 2 <= classes < len(z):
        raise VaekitError(f"the silhouette needs at least 2 classes and more examples than classes; the data has "
                          f"{len(z)} examples in {classes} class{'es' if classes != 1 else ''}")
    with quiet():
        return float(silhouette_score(z, y, metric="euclidean"))


def majority_class_accuracy(train_y, y) -> float:
    """Accuracy on ``y`` of always guessing the most common label of ``train_y`` (the chance level)."""
    train_y, y = _arrays(train_y, y)
    values, counts = np.unique(train_y, return_counts=True)
    return float((y == values[np.argmax(counts)]).mean())


def _arrays(*arrays) -> Tuple[np.ndarray, ...]:
    """numpy copies of tensors or arrays; latent points must be finite."""
    out = []
    for a in arrays:
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise VaekitError("the latent means are not all finite (NaN or inf): the model has diverged; "
                              "retrain it, e.g. with a lower --lr")
        out.append(a)
    return tuple(out)


def latent_quality(train_z, train_y, z, y, k: int = 5, max_iter: int = 1000, max_points: int = 5000,
                   seed: int = 0) -> Dict[str, float]:
    """Every key of :data:`MEANINGS`, for classifiers fitted on (train_z, train_y) and scored on (z, y)."""
    return {"knn_accuracy": knn_accuracy(train_z, train_y, z, y, k),
            "probe_accuracy": probe_accuracy(train_z, train_y, z, y, max_iter),
            "silhouette": silhouette(z, y, max_points, seed),
            "majority_class_accuracy": majority_class_accuracy(train_y, y)}


# -- the registered metrics ----------------------------------------------------------------
def _classes(y) -> int:
    return int(np.unique(_arrays(y)[0]).size)


class _LatentMetric(Metric):
    """Shared by the latent metrics: they need an encoder and labels on the evaluated split;
    those that fit a classifier (``fits``) also need the labelled training split, ``ctx.train``.
    ``problem`` adds what one metric needs of the data beyond that."""

    requires = ("encode",)
    fits = True
    paper = ("k-NN and linear probes of a representation: Alain & Bengio 2016, Understanding intermediate "
             "layers using linear classifier probes; silhouette: Rousseeuw 1987")

    def unavailable(self, model, data: TensorData, ctx: EvalContext) -> Optional[str]:
        reason = super().unavailable(model, data, ctx)
        if reason:
            return reason
        if data.y is None:
            return f"{self.title} needs class labels, and the evaluated data has none"
        if self.fits:
            train = ctx.train if ctx is not None else None
            if train is None or len(train) == 0:
                return (f"{self.title} fits a classifier on the training split, and none was given "
                        "(EvalContext(train=...))")
            if train.y is None:
                return f"{self.title} needs class labels, and the training split has none"
        problem = self.problem(data, ctx)
        return f"{self.title} {problem}" if problem else None

    def problem(self, data: TensorData, ctx: EvalContext) -> Optional[str]:
        return None

    def means(self, model, data: TensorData, ctx: EvalContext) -> Tuple[Optional[np.ndarray], np.ndarray]:
        """Latent means (M, D) of the training split (None unless ``fits``) and (N, D) of ``data``."""
        reason = self.unavailable(model, data, ctx)
        if reason:
            raise VaekitError(reason)
        train = posterior_moments(model, ctx.train, flat=True)[0].numpy() if self.fits else None
        return train, posterior_moments(model, data, flat=True)[0].numpy()


@METRICS.register("knn")
class KnnMetric(_LatentMetric):
    """k-NN accuracy of the latent means (see :func:`knn_accuracy`), with the chance level."""

    group = "latent"

    title = "the k-NN accuracy"
    meanings = {k: MEANINGS[k] for k in ("knn_accuracy", "majority_class_accuracy")}

    def __init__(self, k: int = 5):
        if int(k) < 1:
            raise VaekitError(f"the k-NN accuracy needs k >= 1 neighbours, got k={k}")
        self.k = int(k)

    def problem(self, data: TensorData, ctx: EvalContext) -> Optional[str]:
        if len(ctx.train) < self.k:
            return f"needs at least k={self.k} training examples, and the training split has {len(ctx.train)}"
        return None

    def __call__(self, model, data: TensorData, ctx: EvalContext) -> Dict[str, float]:
        train, z = self.means(model, data, ctx)
        return {"knn_accuracy": knn_accuracy(train, ctx.train.y, z, data.y, self.k),
                "majority_class_accuracy": majority_class_accuracy(ctx.train.y, data.y)}


@METRICS.register("probe")
class ProbeMetric(_LatentMetric):
    """Linear-probe accuracy of the latent means (see :func:`probe_accuracy`), with the chance level."""

    group = "latent"

    title = "the linear-probe accuracy"
    meanings = {k: MEANINGS[k] for k in ("probe_accuracy", "majority_class_accuracy")}

    def __init__(self, max_iter: int = 1000):
        if int(max_iter) < 1:
            raise VaekitError(f"the linear probe needs max_iter >= 1, got {max_iter}")
        self.max_iter = int(max_iter)

    def problem(self, data: TensorData, ctx: EvalContext) -> Optional[str]:
        if _classes(ctx.train.y) < 2:
            return "needs at least 2 classes in the training split"
        return None

    def __call__(self, model, data: TensorData, ctx: EvalContext) -> Dict[str, float]:
        train, z = self.means(model, data, ctx)
        return {"probe_accuracy": probe_accuracy(train, ctx.train.y, z, data.y, self.max_iter),
                "majority_class_accuracy": majority_class_accuracy(ctx.train.y, data.y)}


@METRICS.register("silhouette")
class SilhouetteMetric(_LatentMetric):
    """Silhouette of the evaluated split's latent means by label (see :func:`silhouette`)."""

    group = "latent"

    title = "the silhouette"
    fits = False
    meanings = {"silhouette": MEANINGS["silhouette"]}

    def __init__(self, max_points: int = 5000):
        if int(max_points) < 3:
            raise VaekitError(f"the silhouette needs max_points >= 3, got {max_points}")
        self.max_points = int(max_points)

    def problem(self, data: TensorData, ctx: EvalContext) -> Optional[str]:
        classes = _classes(data.y)
        if not 2 <= classes < min(len(data), self.max_points):
            return (f"needs at least 2 classes and more examples than classes; the evaluated data has "
                    f"{len(data)} examples in {classes} class{'' if classes == 1 else 'es'}")
        return None

    def __call__(self, model, data: TensorData, ctx: EvalContext) -> Dict[str, float]:
        _, z = self.means(model, data, ctx)
        return {"silhouette": silhouette(z, data.y, self.max_points, getattr(ctx, "seed", 0))}


@METRICS.register("latent")
class LatentQualityMetric(_LatentMetric):
    """The group: k-NN and linear-probe accuracy, silhouette and the chance level, each split encoded once."""

    title = "the latent group of metrics"
    meanings = dict(MEANINGS)

    def __init__(self, k: int = 5, max_iter: int = 1000, max_points: int = 5000):
        self.parts = (KnnMetric(k), ProbeMetric(max_iter), SilhouetteMetric(max_points))

    def problem(self, data: TensorData, ctx: EvalContext) -> Optional[str]:
        return next((p for p in (m.problem(data, ctx) for m in self.parts) if p), None)

    def __call__(self, model, data: TensorData, ctx: EvalContext) -> Dict[str, float]:
        train, z = self.means(model, data, ctx)
        knn, probe, sil = self.parts
        return latent_quality(train, ctx.train.y, z, data.y, k=knn.k, max_iter=probe.max_iter,
                              max_points=sil.max_points, seed=ctx.seed)
