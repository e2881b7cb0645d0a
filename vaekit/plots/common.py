"""Helpers shared by the plots: encoding data, the data kind, atomic figure saving.

Figures are built with ``matplotlib.figure.Figure`` directly rather than through pyplot:
nothing is registered globally (no figure to close, no leak in a long loop), it always
renders headless with Agg, and importing vaekit.plots never changes the backend of a
notebook or GUI session the user is in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch
from matplotlib.figure import Figure

from ..data.mapped import MappedData
from ..data.types import DataInfo, TensorData
from ..errors import VaekitError
from ..models.helpers import evaluating, posterior_moments  # noqa: F401  (evaluating: used by plots)
from ..rundir import atomic_write

DPI = 120
PathLike = Union[str, Path]


def new_figure(width: float = 6.4, height: float = 4.8, **subplots) -> tuple:
    """A fresh (fig, axes) pair, laid out with the constrained layout engine."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(**subplots)


def save_figure(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` atomically (temp file in the same directory, then rename); format from the suffix."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        raise VaekitError(f"cannot save a figure as {path}: unknown image format {fmt!r}; use .png, .pdf or .svg")
    # zlib level 1: a plot's PNG encodes several times faster than at Pillow's default 6, a few % larger
    extra = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=DPI, **extra))


def as_data(data) -> TensorData:
    """Accept a TensorData (or streamed MappedData) or a bare tensor/array of examples."""
    if isinstance(data, (TensorData, MappedData)):
        return data
    return TensorData(torch.as_tensor(data, dtype=torch.float32))


def posterior_means(model, data, batch_size: Optional[int] = None) -> torch.Tensor:
    """E_q[z | x] for every example, (N, latent_dim) on the CPU, a latent map flattened; a CVAE is given the
    labels."""
    data = as_data(data)
    if len(data) == 0:
        raise VaekitError("the data has no examples to encode")
    if model.num_classes and data.y is None:
        raise VaekitError(f"this is a conditional VAE over {model.num_classes} classes: the data needs "
                          "labels y to be encoded")
    return posterior_moments(model, data, batch_size, flat=True)[0]  # (N, D)


def data_kind(model, info: Optional[DataInfo] = None) -> str:
    """'image', 'table' or 'array': from ``info`` (the DataInfo of the model's run), else guessed from the
    data shape."""
    if info is not None and info.kind:
        return info.kind
    return {3: "image", 1: "table"}.get(len(model.data_shape), "array")


def class_names(info: Optional[DataInfo] = None, names=None) -> Optional[list]:
    """Names given by the caller, else those of the run's data (``info``), else None."""
    if names is not None:
        return list(names)
    return list(info.class_names) if info is not None and info.class_names else None


def require_image_model(model, what: str, info: Optional[DataInfo] = None) -> None:
    """Raise a VaekitError unless the model was trained on images (see :func:`data_kind`)."""
    kind = data_kind(model, info)
    if kind != "image":
        raise VaekitError(f"{what} needs image data, but this model was trained on {kind} data of shape "
                          f"{tuple(model.data_shape)}; use `vaekit plot RUN latent` for tables")


def check_label(model, label) -> Optional[torch.Tensor]:
    """The label as a tensor for a CVAE (required there); an error if given to a plain VAE."""
    if model.num_classes:
        if label is None:
            raise VaekitError(f"this is a conditional VAE over {model.num_classes} classes: pass a label "
                              f"(--label 0..{model.num_classes - 1}) to choose the class to draw")
        return torch.as_tensor([int(label)])
    if label is not None:
        raise VaekitError("--label only applies to a conditional VAE; this model was trained without labels")
    return None
