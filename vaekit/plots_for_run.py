"""Plots of a run directory, written into RUN/plots/ by default."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from . import run as runs
from .errors import VaekitError
from .train import checkpoint as ckpt


def plot_run(run, kind: str, out: Optional[str] = None, method: str = "pca", split: str = "test", n: int = 15,
             label: Optional[int] = None, model=None, data=None) -> Path:
    """Write one plot of ``run``: "latent", "manifold", "curves", "samples" or "reconstructions".

    ``model`` and ``data`` (the ``split`` of the run's data) may be passed in when already loaded.
    """
    from . import plots
    from .workflows import require_suffix, run_data

    require_suffix(out, ".png", "--out")
    run = Path(run)
    path = Path(out) if out else run / ckpt.PLOTS / f"{kind}.png"
    if kind == "curves":
        runs.require_run(run)
        return plots.plot_curves(run / ckpt.METRICS, path)
    if method not in ("pca", "tsne"):
        raise VaekitError(f"--method must be pca or tsne, got {method!r}")
    model = model or runs.load(run)
    if data is None and kind in ("latent", "manifold", "reconstructions"):
        data = run_data(model, None, split)
    if kind == "latent":
        return plots.plot_latent(model, data, path, method=method, class_names=model.info.class_names)
    if model.info.kind != "image":
        raise VaekitError(f"the {kind} plot draws images, and {model.config.data.source!r} is a table; "
                          f"use `vaekit plot {run} latent` or `vaekit sample {run} --npy out.npy`")
    if kind == "manifold":
        if n < 2:
            raise VaekitError(f"--n must be at least 2 for a manifold grid, got {n}")
        if model.num_classes and label is None:
            label = 0
        return plots.plot_manifold(model, path, data=data, n=n, label=label)
    if kind == "samples":
        return plots.plot_samples(model, path, n=64)  # a CVAE gets one row per class
    if kind == "reconstructions":
        return plots.plot_reconstructions(model, data, path, n=16)
    raise VaekitError(f"unknown plot {kind!r}; choose latent, manifold or curves")


def write_all_plots(model) -> List[Path]:
    """Every plot that fits the run's data: latent map, curves, and for images manifold, samples, reconstructions."""
    from .workflows import run_data

    kinds = ["latent", "curves"]
    if model.info.kind == "image":
        kinds += ["manifold", "samples", "reconstructions"]
    data = run_data(model, None, "test")  # loaded once for every plot
    return [plot_run(model.run_dir, kind, model=model, data=data) for kind in kinds]
