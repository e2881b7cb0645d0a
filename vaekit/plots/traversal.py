"""Latent traversals and interpolations: decoder means along straight paths in the latent space.

A traversal varies one latent dimension of one example's posterior mean at a time, the others
fixed (Higgins et al. 2017, "beta-VAE", fig. 1-2); an interpolation walks from one example's
posterior mean to another's, linearly or along the great circle (slerp, White 2016,
"Sampling Generative Networks"). Both decode the mean of p(x|z) and need a model whose decoder
reads one continuous latent vector (the ``latent_grid`` capability).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data.types import DataInfo
from ..errors import VaekitError
from .common import (DPI, PathLike, as_data, class_names, evaluating, new_figure, posterior_means,
                     require_image_model, save_figure)
from .grid import display_pixels, grid_gap, image_grid, upscale_factor
from .manifold import latent_activity

MAX_DIMS = 16      # traversal rows: the most active dimensions
PAIRS = 8          # interpolation rows
SPAN = 3.0         # traversal range: prior mean +- SPAN prior standard deviations
BAND = 3           # px of grey between originals and the decoded path
MARGIN = (120, 108)  # px around the image grid for ticks, labels and the title: (width, height)
SEED = 0
MODES = ("linear", "slerp")


# -- traversal ---------------------------------------------------------------------------------
def prior_location_scale(model, samples: int = 10000, seed: int = SEED) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (D,) of the prior p(z) per latent dimension, on the CPU.

    Exact where the model's ``prior()`` gives a distribution with a mean and a variance
    (N(0, I), a mixture); else estimated from ``samples`` seeded draws of ``prior_sample``.
    """
    with evaluating(model):
        prior = getattr(model, "prior", None)
        if callable(prior):
            try:
                p = prior()
                if tuple(p.mean.shape) == getattr(model, "latent_shape", (model.latent_dim,)):
                    return p.mean.float().cpu().flatten(), p.stddev.float().cpu().flatten()
            except NotImplementedError:
                pass
        cuda = [model.device.index or 0] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            z = model.prior_sample(samples).float().cpu().flatten(1)  # (samples, D)
    return z.mean(0), z.std(0)


def traversal_values(n: int, span: float = SPAN) -> torch.Tensor:
    """n evenly spaced offsets in -span..span, in prior standard deviations."""
    if n < 2:
        raise VaekitError(f"--n must be at least 2 steps for a traversal, got {n}")
    return torch.linspace(-float(span), float(span), n)


def traversal_grid(model, z0: torch.Tensor, dims: Sequence[int], n: int = 10, span: float = SPAN,
                   label: Optional[int] = None, prior: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Decoder means (R, n, C, H, W) and the latent points (R, n, D) they decode.

    Row r sets dimension ``dims[r]`` of ``z0`` (D,) to prior mean + v * prior sd for each v of
    :func:`traversal_values`; every other dimension keeps its value in ``z0``. For a latent map
    (C, h, w), flattened in ``z0``, ``dims`` are channels and row r moves every position of channel
    ``dims[r]`` by v prior sds from its value in ``z0``, so the map keeps its spatial layout (setting a
    whole channel to one value would erase it). A conditional
    model decodes every image as class ``label``. ``prior``: the (mean, sd) of
    :func:`prior_location_scale`, if already known.
    """
    dims = [int(d) for d in dims]
    shape = getattr(model, "latent_shape", (model.latent_dim,))
    units = "channels of the latent map" if len(shape) > 1 else "latent dimensions"
    if not dims or not all(0 <= d < shape[0] for d in dims):
        raise VaekitError(f"traversal dims {dims} must be {units} in 0..{shape[0] - 1}")
    loc, scale = prior if prior is not None else prior_location_scale(model)
    v = traversal_values(n, span)
    z = z0.detach().float().cpu().reshape(1, 1, -1).repeat(len(dims), n, 1)     # (R, n, D)
    size = model.latent_dim // shape[0]                                          # values per unit: 1 or h * w
    for r, d in enumerate(dims):
        if len(shape) > 1:
            at = slice(d * size, (d + 1) * size)
            z[r, :, at] = z[r, :, at] + v[:, None] * scale[at]
        else:
            z[r, :, d] = loc[d] + v * scale[d]
    return _decode(model, z, label), z


def plot_traversal(model, data, path: PathLike, n: int = 10, span: float = SPAN, example: int = 0,
                   max_dims: int = MAX_DIMS, label: Optional[int] = None, info: Optional[DataInfo] = None) -> Path:
    """One row per latent dimension (the ``max_dims`` most active on ``data``, most active first):
    the decoder mean as that dimension of example ``example``'s posterior mean sweeps the prior's
    mean +- ``span`` standard deviations in ``n`` steps. A conditional model encodes the example
    with its own label and decodes it as ``label`` (default: the same). Returns the written path.
    ``info``: the run's DataInfo (``vaekit.open_run(path).info``), its kind and class names.
    """
    require_image_model(model, "the traversal plot", info)
    data = as_data(data)
    if not 0 <= example < len(data):
        raise VaekitError(f"example {example} is out of range: the data has {len(data)} examples")
    activity = latent_activity(model, data)                                          # (D,)
    dims = [int(d) for d in np.argsort(-activity, kind="stable")[:max(1, max_dims)]]
    seed = data.subset(torch.tensor([example]))
    z0 = posterior_means(model, seed)[0]                                             # (D,)
    label = _check_label(model, label)
    if model.num_classes and label is None:
        label = int(seed.y[0])  # posterior_means above made sure there is one
    loc, scale = prior = prior_location_scale(model)
    images, _ = traversal_grid(model, z0, dims, n, span, label, prior)
    standard = bool(torch.allclose(loc, torch.zeros_like(loc), atol=1e-6) and
                    torch.allclose(scale, torch.ones_like(scale), atol=1e-6))
    v = traversal_values(n, span).tolist()
    unit = "channel" if getattr(model, "spatial", False) else "dim"
    title = f"traversals of example {example}, most active {unit} on top" if len(dims) > 1 else \
        f"traversal of example {example}"
    title += _class_note(info, label)
    return _draw_rows([_grid(images)], images.shape[2:], path, title,
                      xticks=[(i, f"{round(v[i], 6) + 0.0:.2g}") for i in _ticks(n)],
                      xlabel=("v: z[channel] = its posterior mean + v × prior sd" if unit == "channel" else
                              "z[dim]" if standard else "v: z[dim] = prior mean + v × prior sd"),
                      rows=[f"z[{d}]" for d in dims])


# -- interpolation ----------------------------------------------------------------------------
def interpolation_path(za: torch.Tensor, zb: torch.Tensor, n: int = 10, mode: str = "linear") -> torch.Tensor:
    """Points (P, n, D) from ``za`` (P, D) to ``zb`` (P, D), both included, at t = 0, 1/(n-1), ..., 1.

    ``linear``: (1 - t) za + t zb. ``slerp``: the great circle about the origin,
    [sin((1 - t) w) za + sin(t w) zb] / sin w with w the angle between za and zb (White 2016);
    linear where the angle is ~0.
    """
    if mode not in MODES:
        raise VaekitError(f"the interpolation mode must be {' or '.join(MODES)}, got {mode!r}")
    if n < 2:
        raise VaekitError(f"--n must be at least 2 steps for an interpolation, got {n}")
    za, zb = za.float(), zb.float()
    t = torch.linspace(0.0, 1.0, n)[None, :, None]                                   # (1, n, 1)
    a, b = za[:, None, :], zb[:, None, :]                                           # (P, 1, D)
    linear = (1 - t) * a + t * b
    if mode == "linear":
        return linear
    cos = torch.nn.functional.cosine_similarity(za, zb, dim=1).clamp(-1.0, 1.0)     # (P,)
    w = torch.acos(cos)[:, None, None]
    sin = torch.sin(w)
    curved = (torch.sin((1 - t) * w) * a + torch.sin(t * w) * b) / sin.clamp_min(1e-6)
    return torch.where(sin > 1e-6, curved, linear)


def choose_pairs(y: Optional[torch.Tensor], n_examples: int, pairs: int = PAIRS, same_class: bool = False,
                 label: Optional[int] = None, seed: int = SEED) -> List[Tuple[int, int]]:
    """Up to ``pairs`` disjoint (a, b) example indices, drawn with a seeded permutation.

    ``same_class`` pairs examples of the same label only (class ``label`` if given), as a
    conditional model decodes a path under one label.
    """
    order = torch.randperm(n_examples, generator=torch.Generator().manual_seed(seed)).tolist()
    if not same_class:
        return [(order[2 * i], order[2 * i + 1]) for i in range(min(pairs, n_examples // 2))]
    waiting, out = {}, []
    for i in order:
        c = int(y[i])
        if label is not None and c != int(label):
            continue
        if c in waiting:
            out.append((waiting.pop(c), i))
            if len(out) == pairs:
                break
        else:
            waiting[c] = i
    return out


def interpolation_grid(model, data, n: int = 10, pairs: int = PAIRS, mode: str = "linear",
                       label: Optional[int] = None, seed: int = SEED):
    """Endpoints and decoded paths of :func:`choose_pairs` examples.

    Returns (xa (P, C, H, W), images (P, n, C, H, W), xb (P, C, H, W), z (P, n, D), pairs):
    ``images[p, 0]`` and ``images[p, -1]`` decode the posterior means of ``xa[p]`` and
    ``xb[p]``. A conditional model pairs examples of one class and decodes the path as that class.
    """
    data = as_data(data)
    label = _check_label(model, label)
    conditional = bool(model.num_classes)
    if conditional and data.y is None:
        raise VaekitError(f"this is a conditional VAE over {model.num_classes} classes: the data needs labels y")
    chosen = choose_pairs(data.y, len(data), pairs, same_class=conditional, label=label, seed=seed)
    if not chosen:
        which = f" of class {label}" if label is not None else " of one class" if conditional else ""
        raise VaekitError(f"an interpolation needs a pair of examples{which}, and the data (size {len(data)}) "
                          "has none")
    a, b = (torch.tensor([p[i] for p in chosen]) for i in (0, 1))
    da, db = data.subset(a), data.subset(b)
    z = interpolation_path(posterior_means(model, da), posterior_means(model, db), n, mode)  # (P, n, D)
    c = da.y[:, None].expand(-1, n).reshape(-1) if conditional else None
    return da.x, _decode(model, z, c), db.x, z, chosen


def plot_interpolation(model, data, path: PathLike, n: int = 10, pairs: int = PAIRS, mode: str = "linear",
                       label: Optional[int] = None, info: Optional[DataInfo] = None) -> Path:
    """One row per pair of examples: the original at each end, between them the decoder means
    along the ``mode`` path between their posterior means in ``n`` steps (t = 0 and 1 are
    the two reconstructions). A conditional model pairs examples of the same class (``label``
    if given). Returns the written path. ``info``: the run's DataInfo (``vaekit.open_run(path).info``), its kind and class names.
    """
    require_image_model(model, "the interpolation plot", info)
    xa, images, xb, _, chosen = interpolation_grid(model, data, n, pairs, mode, label)
    scale = upscale_factor(*images.shape[-2:])
    blocks = [image_grid(xa, 1, scale=scale), _grid(images), image_grid(xb, 1, scale=scale)]
    title = f"{mode} interpolation of posterior means, originals at the ends"
    title += _class_note(info, label) if label is not None else (", pairs of one class" if model.num_classes else "")
    cell = images.shape[-1] * scale + grid_gap(*(d * scale for d in images.shape[-2:]))
    left = blocks[0].shape[1] + BAND                                                # px before the path
    t = np.linspace(0.0, 1.0, n)
    return _draw_rows(blocks, images.shape[2:], path, title,
                      xticks=[(left / cell + i, f"{t[i]:.2g}") for i in _ticks(n)], xlabel="t",
                      rows=[f"{a}→{b}" for a, b in chosen])


# -- shared ------------------------------------------------------------------------------------
def _decode(model, z: torch.Tensor, c) -> torch.Tensor:
    """Decoder means (*z.shape[:-1], C, H, W) of latent points z (..., D); ``c``: None, one class
    for every point, or one per point (a conditional model)."""
    flat = z.reshape(-1, z.shape[-1])                                              # (B, D)
    with evaluating(model):
        images = model.decode(flat.to(model.device), None if c is None else torch.as_tensor(c)).mean.cpu()
    return images.reshape(*z.shape[:-1], *images.shape[1:])


def _check_label(model, label: Optional[int]) -> Optional[int]:
    """``label`` as an int, checked: only a conditional model takes one, within its classes."""
    if label is None:
        return None
    if not model.num_classes:
        raise VaekitError("--label only applies to a conditional VAE; this model was trained without labels")
    if not 0 <= int(label) < model.num_classes:
        raise VaekitError(f"label {label} is out of range; this model knows labels 0..{model.num_classes - 1}")
    return int(label)


def _class_note(info: Optional[DataInfo], label: Optional[int]) -> str:
    if label is None:
        return ""
    names = class_names(info)
    return f", decoded as class {names[label] if names and label < len(names) else label}"


def _ticks(n: int) -> List[int]:
    return sorted(set(np.linspace(0, n - 1, min(n, 5)).round().astype(int).tolist()))


def _grid(images: torch.Tensor) -> np.ndarray:
    """Rows of images (R, n, C, H, W) tiled, cells enlarged like every image grid."""
    r, n = images.shape[:2]
    return image_grid(images.reshape(r * n, *images.shape[2:]), nrow=n,
                      scale=upscale_factor(*images.shape[-2:]))


def _draw_rows(blocks: List[np.ndarray], shape, path: PathLike, title: str, xticks, xlabel: str,
               rows: List[str]) -> Path:
    """Blocks of image rows side by side (BAND px of grey between), about 1 image px per screen px,
    with one y tick per row; the PNG is the grid plus ``MARGIN`` px."""
    band = np.full((blocks[0].shape[0], BAND) + blocks[0].shape[2:], 0.5, dtype=np.float32)
    parts = [p for block in blocks for p in (block, band)][:-1]
    grid = np.concatenate(parts, axis=1)
    scale = upscale_factor(*shape[1:])
    h, w = shape[1] * scale, shape[2] * scale
    gap = grid_gap(h, w)
    fig, ax = new_figure((grid.shape[1] + MARGIN[0]) / DPI, (grid.shape[0] + MARGIN[1]) / DPI)
    ax.imshow(display_pixels(grid), interpolation="nearest")
    ax.set_xticks([x * (w + gap) + (w - 1) / 2 for x, _ in xticks], [text for _, text in xticks])
    ax.set_xlabel(xlabel)
    ax.set_yticks([r * (h + gap) + (h - 1) / 2 for r in range(len(rows))], rows)
    ax.set_title(title, fontsize="medium", wrap=True)
    return save_figure(fig, path)
