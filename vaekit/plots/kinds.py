"""The plots registry: each plot of a run by name, with what it needs and whom it applies to.

``vaekit plot RUN NAME`` and the end-of-training plots look plots up here; a plot that
does not apply to a model says why in one line (``applies_to``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple

from ..data.types import DataInfo
from ..errors import VaekitError
from ..registry import PLOTS
from .common import data_kind
from .curves import plot_curves
from .latent import METHODS, plot_latent
from .manifold import NOT_FOR_MAPS, plot_manifold
from .recon import plot_reconstructions, plot_samples
from .traversal import plot_interpolation, plot_traversal


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    draw: Callable[..., Path]          # draw(model, data, path, run=..., info=..., method=..., n=..., label=...)
    requires: Tuple[str, ...] = ()     # model capabilities
    images: bool = False               # draws decoded images: image data only
    uses_data: bool = False            # needs the run's data split
    uses_model: bool = True
    vector_only: Optional[str] = None  # why the plot does not apply to a latent map (C, h, w), if it does not

    def applies_to(self, model, info: Optional[DataInfo] = None) -> Optional[str]:
        """None if the plot can be drawn for ``model`` (trained on data ``info`` describes), else the
        one-line reason why not."""
        if not self.uses_model:
            return None
        for capability in self.requires:
            why = model.why_not(capability)
            if why:
                return why
        if self.vector_only and getattr(model, "spatial", False):
            return self.vector_only
        if self.images and data_kind(model, info) != "image":
            return (f"it draws images, and this model was trained on {data_kind(model, info)} data of shape "
                    f"{tuple(model.data_shape)}")
        return None

    def check(self, model, info: Optional[DataInfo] = None) -> None:
        reason = self.applies_to(model, info)
        if reason:
            raise VaekitError(f"the {self.name} plot does not apply to the {model.name} model: {reason}")


def _latent(model, data, path, method="pca", info=None, **_):
    if method not in METHODS:
        raise VaekitError(f"--method must be {' or '.join(METHODS)}, got {method!r}")
    return plot_latent(model, data, path, method=method, info=info)


def _manifold(model, data, path, n=15, label=None, info=None, **_):
    if n < 2:
        raise VaekitError(f"--n must be at least 2 for a manifold grid, got {n}")
    if model.num_classes and label is None:
        label = 0
    return plot_manifold(model, path, data=data, n=n, label=label, info=info)


def _curves(model, data, path, run=None, **_):
    from .. import rundir

    return plot_curves(Path(rundir.require_run(run)) / rundir.METRICS, path)


for _plot in (
    Plot("latent", "latent map: posterior means by class", _latent, ("encode",), uses_data=True),
    Plot("manifold", "decoded grid over the latent plane", _manifold, ("latent_grid",), images=True,
         uses_data=True, vector_only=NOT_FOR_MAPS),
    Plot("curves", "training curves", _curves, uses_model=False),
    Plot("samples", "decoded draws from the prior",
         lambda model, data, path, info=None, **_: plot_samples(model, path, n=64, info=info), ("sample",),
         images=True),
    Plot("reconstructions", "originals above reconstructions",
         lambda model, data, path, info=None, **_: plot_reconstructions(model, data, path, n=16, info=info),
         images=True, uses_data=True),
    Plot("traversal", "one latent dimension varied at a time, decoded",
         lambda model, data, path, n=10, label=None, info=None, **_: plot_traversal(model, data, path, n=n,
                                                                                    label=label, info=info),
         ("encode", "latent_grid"), images=True, uses_data=True),
    Plot("interpolation", "decoded paths between pairs of examples' latent means",
         lambda model, data, path, n=10, label=None, info=None, **_: plot_interpolation(
             model, data, path, n=n, label=label, info=info),
         ("encode", "latent_grid"), images=True, uses_data=True),
):
    PLOTS.register(_plot.name)(_plot)
