"""The learned manifold: decoder means over a regular 2-D grid of latent values.

Kingma & Welling 2014 ("Auto-Encoding Variational Bayes", fig. 4): the grid is laid
out on the quantiles of the standard normal prior, so equal steps are equal prior mass.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.distributions import Normal

from ..data.types import DataInfo
from ..errors import VaekitError
from .common import (DPI, PathLike, check_label, class_names, evaluating, new_figure, posterior_means,
                     require_image_model, save_figure)
from .grid import display_pixels, grid_gap, image_grid, upscale_factor

Span = Union[None, float, Tuple[float, float]]
# why the grid does not apply to a latent map (C, h, w), said in one line
NOT_FOR_MAPS = ("its grid spans two latent dimensions with the rest at 0, and a latent map's values are positions "
                "of channels: two of them make no plane of images (use the traversal plot)")


def latent_activity(model, data, batch_size: Optional[int] = None) -> np.ndarray:
    """A_d = Cov_x(E_q[z_d | x]) per latent dimension, (D,); for a latent map (C, h, w) per channel, (C,),
    averaged over the channel's positions.

    The "active units" statistic of Burda et al. 2016 (IWAE paper, sec. 5.2): a unit whose
    posterior mean does not move with x (A_d < 0.01 there) is unused by the model.
    """
    activity = posterior_means(model, data, batch_size).double().var(0, unbiased=True)
    shape = getattr(model, "latent_shape", (model.latent_dim,))
    return activity.reshape(shape[0], -1).mean(1).numpy()


def active_dimensions(model, data, k: int = 2, batch_size: Optional[int] = None) -> List[int]:
    """Indices of the ``k`` latent dimensions with the largest activity, most active first."""
    if not 1 <= k <= model.latent_dim:
        raise VaekitError(f"cannot pick {k} active dimensions of a {model.latent_dim}-D latent space")
    activity = latent_activity(model, data, batch_size)
    return [int(d) for d in np.argsort(-activity, kind="stable")[:k]]


def grid_values(n: int = 15, span: Span = None) -> torch.Tensor:
    """n increasing latent values: N(0, 1) quantiles 0.05..0.95 by default, else linspace over ``span``.

    ``span`` is a (low, high) pair or a number s meaning (-s, s).
    """
    if n < 1:
        raise VaekitError(f"the manifold grid needs n >= 1 points per side, got {n}")
    if span is None:
        return Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
    low, high = (-float(span), float(span)) if np.isscalar(span) else map(float, span)
    return torch.linspace(low, high, n)


def manifold_grid(model, n: int = 15, span: Span = None, dims: Sequence[int] = (0, 1),
                  label: Optional[int] = None) -> torch.Tensor:
    """Decoder means (n*n, C, H, W) over a 2-D window of latent dims ``dims``; other dims are 0.

    Row-major order as drawn: column c has z[dims[0]] = v[c] (increasing to the right),
    row r has z[dims[1]] = v[n-1-r] (top row = highest). With a single dim the result is
    one row of n images. A CVAE needs ``label``, the class every image is decoded as.
    """
    dims = [int(d) for d in dims]
    if not 1 <= len(dims) <= 2 or len(set(dims)) != len(dims) or not all(0 <= d < model.latent_dim for d in dims):
        raise VaekitError(f"manifold dims {tuple(dims)} must be one or two distinct latent dimensions in "
                          f"0..{model.latent_dim - 1}")
    y = check_label(model, label)
    v = grid_values(n, span)
    if len(dims) == 1:
        z = torch.zeros(n, model.latent_dim)
        z[:, dims[0]] = v
    else:
        z = torch.zeros(n, n, model.latent_dim)
        z[:, :, dims[0]] = v[None, :]            # columns
        z[:, :, dims[1]] = v.flip(0)[:, None]    # rows, top = high
        z = z.reshape(n * n, model.latent_dim)
    with evaluating(model):
        return model.decode(z.to(model.device), y).mean.cpu()  # (n*n, C, H, W)


def plot_manifold(model, path: PathLike, data=None, n: int = 15, label: Optional[int] = None,
                  span: Span = None, info: Optional[DataInfo] = None) -> Path:
    """Draw :func:`manifold_grid` with the latent values on the axes; returns the written path.

    For a latent space of more than 2 dimensions the two most active ones on ``data`` are
    shown (dims 0 and 1 without data). Image models only. ``info``: the run's DataInfo (``vaekit.open_run(path).info``), its kind and class names.
    """
    require_image_model(model, "the manifold plot", info)
    if getattr(model, "spatial", False):
        raise VaekitError(f"the manifold plot does not apply to a latent map: {NOT_FOR_MAPS}")
    check_label(model, label)
    if model.latent_dim == 1:
        dims = [0]
    elif model.latent_dim > 2 and data is not None:
        dims = active_dimensions(model, data, 2)
    else:
        dims = [0, 1]
    images = manifold_grid(model, n, span, dims, label)
    h, w = images.shape[2:]
    scale = upscale_factor(h, w)  # small images enlarged by an integer factor
    grid = image_grid(images, nrow=n, pad_value=1.0, scale=scale)
    h, w = h * scale, w * scale
    g = grid_gap(h, w)
    v = grid_values(n, span).tolist()

    fig, ax = new_figure(grid.shape[1] / DPI + 1.0, grid.shape[0] / DPI + 0.9)  # about 1 image px per screen px
    ax.imshow(display_pixels(grid), interpolation="nearest")
    ticks = sorted(set(np.linspace(0, n - 1, min(n, 5)).round().astype(int).tolist()))
    ax.set_xticks([t * (w + g) + (w - 1) / 2 for t in ticks], [f"{v[t]:.2g}" for t in ticks])
    ax.set_xlabel(f"z[{dims[0]}]")
    if len(dims) == 2:
        ax.set_yticks([t * (h + g) + (h - 1) / 2 for t in ticks], [f"{v[n - 1 - t]:.2g}" for t in ticks])
        ax.set_ylabel(f"z[{dims[1]}]")
    else:
        ax.set_yticks([])
    title = "decoder means"
    if label is not None:
        names = class_names(info)
        title += f", class {names[label] if names and label < len(names) else label}"
    if model.latent_dim > len(dims):
        title += f"; other {model.latent_dim - len(dims)} dims at 0"
    ax.set_title(title, fontsize="medium")
    return save_figure(fig, path)
