"""The latent map: posterior means of the data, projected to 2-D and coloured by label."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.lines import Line2D

from ..data.types import DataInfo
from ..errors import VaekitError
from .common import PathLike, as_data, class_names as _class_names, new_figure, posterior_means, save_figure

METHODS = ("pca", "tsne")
SEED = 0  # subsampling, jitter and t-SNE are all seeded: the same data gives the same plot


def embed_points(means: np.ndarray, method: str = "pca") -> Tuple[np.ndarray, dict]:
    """Project latent points (N, D) to (N, 2); see :func:`latent_embedding`."""
    if method not in METHODS:
        raise VaekitError(f"unknown latent projection {method!r}; choose one of {', '.join(METHODS)}")
    means = np.asarray(means, dtype=np.float64)
    n, d = means.shape
    if d == 1:  # a strip plot: z on x, a seeded jitter on y so points do not overlap
        jitter = np.random.default_rng(SEED).uniform(-0.5, 0.5, n)
        return np.stack([means[:, 0], jitter], axis=1), {"method": "strip"}
    if d == 2:
        return means.copy(), {"method": "identity"}
    if method == "pca":
        if n < 2:
            raise VaekitError("a PCA latent map needs at least 2 examples")
        from sklearn.decomposition import PCA
        pca = PCA(n_components=2, svd_solver="full").fit(means)
        return pca.transform(means), {"method": "pca",
                                      "explained_variance": pca.explained_variance_ratio_.tolist()}
    if n < 5:
        raise VaekitError("a t-SNE latent map needs at least 5 examples")
    from sklearn.manifold import TSNE
    perplexity = min(30.0, (n - 1) / 3.0)  # sklearn requires perplexity < n
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=SEED)
    return tsne.fit_transform(means), {"method": "tsne", "perplexity": perplexity}


def latent_embedding(model, data, method: str = "pca", batch_size: Optional[int] = None) -> Tuple[np.ndarray, dict]:
    """2-D points (N, 2) for the posterior means E_q[z|x] of ``data`` (a CVAE is given data.y).

    The description says how they were made: ``{"method": "identity"}`` for a 2-D latent
    (``method`` is then ignored), ``{"method": "pca", "explained_variance": [r1, r2]}``
    (fractions of the total variance of the means), ``{"method": "tsne", "perplexity": p}``,
    or ``{"method": "strip"}`` for a 1-D latent (z against a seeded jitter in [-0.5, 0.5]).
    """
    if method not in METHODS:
        raise VaekitError(f"unknown latent projection {method!r}; choose one of {', '.join(METHODS)}")
    return embed_points(posterior_means(model, data, batch_size).numpy(), method)


def axis_labels(description: dict) -> Tuple[str, str]:
    """Axis labels saying which projection the points are in."""
    method = description["method"]
    if method == "pca":
        r1, r2 = description["explained_variance"]
        return f"PC1 ({r1:.0%} of variance)", f"PC2 ({r2:.0%} of variance)"
    if method == "tsne":
        return "t-SNE 1", "t-SNE 2"
    if method == "strip":
        return "z[0]", "jitter"
    return "z[0]", "z[1]"


def subsample(data, max_points: int, seed: int = SEED):
    """At most ``max_points`` examples, the same ones on every call (a seeded permutation)."""
    if len(data) <= max_points:
        return data
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:max_points]
    return data.subset(index.sort().values)


def _scatter(fig, ax, points: np.ndarray, labels: Optional[np.ndarray], names: Optional[Sequence[str]]) -> None:
    """Points coloured by label: a legend of class names for <= 20 classes, else a colour bar."""
    order = np.random.default_rng(SEED).permutation(len(points))  # no class drawn on top of all others
    points = points[order]
    size = 10 if len(points) <= 2000 else 4
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.7, linewidths=0)
        return
    labels = labels[order]
    k = max(int(labels.max()) + 1, len(names) if names else 0)
    if k > 20:
        sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="viridis", s=size, alpha=0.7, linewidths=0)
        fig.colorbar(sc, ax=ax, label="label")
        return
    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    ax.scatter(points[:, 0], points[:, 1], c=cmap(labels), s=size, alpha=0.7, linewidths=0)  # one lookup for all
    handles = [Line2D([], [], marker="o", linestyle="", color=cmap(c),
                      label=str(names[c]) if names and c < len(names) else str(c))
               for c in sorted(set(int(c) for c in labels))]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize="small")


def plot_latent(model, data, path: PathLike, method: str = "pca", class_names: Optional[Sequence[str]] = None,
                max_points: int = 5000, title: Optional[str] = None, info: Optional[DataInfo] = None) -> Path:
    """Scatter the posterior means of (at most ``max_points`` of) ``data`` in 2-D, coloured by label; data
    with covariates (a batch) gets one more map beside it per covariate, the same points coloured by it.

    ``class_names`` default to those of the run's data (``info``, ``vaekit.open_run(path).info``).
    Returns the written path.
    """
    data = subsample(as_data(data), max_points)
    points, description = latent_embedding(model, data, method)
    labels = None if data.y is None else data.y.cpu().numpy().astype(int)
    panels = [(labels, _class_names(info, class_names), None)]
    covariates = getattr(data, "covariates", None)
    known = info.covariates if info is not None else []
    for j in range(0 if covariates is None else covariates.shape[1]):
        name, categories = (known[j]["name"], known[j]["categories"]) if j < len(known) else (f"covariate {j}", None)
        panels.append((covariates[:, j].cpu().numpy().astype(int), categories, f"by {name}"))
    fig, axes = new_figure(6.4 * len(panels), 5.0, ncols=len(panels), squeeze=False)
    xlabel, ylabel = axis_labels(description)
    for ax, (colours, names, what) in zip(axes[0], panels):
        _scatter(fig, ax, points, colours, names)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if description["method"] == "strip":
            ax.set_yticks([])
        if what:
            ax.set_title(what)
    ax = axes[0][0]
    how = {"identity": "", "strip": "", "pca": ", PCA", "tsne": ", t-SNE"}[description["method"]]
    shape = getattr(model, "latent_shape", (model.latent_dim,))
    size = f"{'×'.join(map(str, shape))} latent map, flattened" if len(shape) > 1 else f"{model.latent_dim}-D latent"
    ax.set_title(title or f"posterior means of {len(data)} examples ({size}{how})")
    return save_figure(fig, path)
