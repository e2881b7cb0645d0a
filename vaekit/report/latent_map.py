"""The report's latent map: every test point (up to a cap) as an SVG dot coloured by class, in the
plane of ``vaekit plot latent`` (the latent itself when 2-D, else its first two principal axes).

Hovering a dot shows that example next to its reconstruction. The thumbnails are packed into one
PNG sprite (each cell: the original, then the reconstruction) that the page's script crops; when
the sprite would pass ``thumb_bytes``, a seeded sample of the points carries a thumbnail, so that
a 10,000-point map stays within a few MB.
"""
from __future__ import annotations

import base64
import io
import math
from html import escape
from typing import Optional
import numpy as np
import torch
from PIL import Image

from ..data.batching import inference_batch_size
from ..plots.common import class_names, data_kind, evaluating, posterior_means
from ..plots.latent import axis_labels, embed_points, subsample
from .curves import run_colour

SIZE, PAD = 520, 14
MAX_POINTS = 10000
THUMB_BYTES = 2_500_000  # the sprite's PNG at most; base64 makes it 4/3 of that in the page
SEED = 0


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit PNG of (H, W) grey or (H, W, 3) RGB values in [0, 1]."""
    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def reconstructions(model, data, batch_size: Optional[int] = None) -> tuple:
    """(the examples, the decoder mean at the posterior mean of each), read batch by batch (streamed data too);
    a CVAE is given the labels."""
    originals, recons = [], []
    batch_size = batch_size or inference_batch_size(data)
    with evaluating(model):
        for i in range(0, len(data), batch_size):
            x = data.x[i:i + batch_size].to(model.device)
            c = getattr(data, "c", data.y) if model.conditioned else None  # labels (and covariates, in memory)
            y = c[i:i + batch_size].to(model.device) if c is not None else None
            originals.append(x.cpu())
            recons.append(model.reconstruct(x, y).cpu())
    return torch.cat(originals), torch.cat(recons)


def sprite(originals: torch.Tensor, recons: torch.Tensor, cols: int = 50) -> np.ndarray:
    """Cells of [original | reconstruction], ``cols`` cells per row: (rows*H, cols*2W[, 3]) in [0, 1]."""
    x = np.clip(np.nan_to_num(torch.cat([originals, recons], dim=3).float().numpy()), 0.0, 1.0)  # (N, C, H, 2W)
    n, c, h, w2 = x.shape
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    canvas = np.ones((rows * cols, c, h, w2), dtype=np.float32)
    canvas[:n] = x
    grid = canvas.reshape(rows, cols, c, h, w2).transpose(0, 3, 1, 4, 2).reshape(rows * h, cols * w2, c)
    return grid[..., 0] if c == 1 else grid


def thumbnails(originals: torch.Tensor, recons: torch.Tensor, budget: int) -> tuple:
    """(the sprite's PNG bytes, the indices of the examples in it): all of them, or a seeded sample that
    keeps the PNG within ``budget`` bytes."""
    keep = np.arange(len(originals))
    png = png_bytes(sprite(originals, recons))
    while len(png) > budget and len(keep) > 1:
        count = max(1, int(len(keep) * budget / len(png) * 0.95))
        keep = np.sort(np.random.default_rng(SEED).choice(len(originals), count, replace=False))
        png = png_bytes(sprite(originals[keep], recons[keep]))
    return png, keep


def latent_map_html(model, data, info, map_id: str, max_points: int = MAX_POINTS,
                    thumb_bytes: int = THUMB_BYTES) -> str:
    """The map's HTML: an SVG of the points, the hidden sprite, and a caption saying what is shown."""
    shown = subsample(data, max_points)
    means = posterior_means(model, shown).numpy()
    points, description = embed_points(means)
    labels = None if shown.y is None else shown.y.cpu().numpy().astype(int)
    names = class_names(info)
    xlabel, ylabel = axis_labels(description)
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    xy = PAD + (points - lo) / span * (SIZE - 2 * PAD)
    xy[:, 1] = SIZE - xy[:, 1]  # SVG's y grows downwards

    notes, sprite_html, cell = [], "", {}
    if data_kind(model, info) == "image":
        png, keep = thumbnails(*reconstructions(model, shown), thumb_bytes)
        cell = {int(i): k for k, i in enumerate(keep)}
        c, h, w = shown.x.shape[1:]
        sprite_html = (f'<img class="sprite" id="{map_id}-sprite" hidden alt="" data-w="{w}" data-h="{h}" '
                       f'data-cols="{min(50, len(keep))}" src="{data_uri(png)}">')
        if len(keep) < len(shown):
            notes.append(f"{len(keep):,} of the {len(shown):,} points, a seeded sample, carry a thumbnail "
                         f"(larger dots), to keep the file small.")
    else:
        notes.append(f"No thumbnails: the model was trained on {data_kind(model, info)} data, not images.")
    if len(shown) < len(data):
        notes.append(f"{len(shown):,} of the {len(data):,} examples, a seeded sample, are drawn.")

    order = np.random.default_rng(SEED).permutation(len(shown))  # no class drawn on top of all the others ...
    order = np.concatenate([order[[int(i) not in cell for i in order]], order[[int(i) in cell for i in order]]])
    # ... and the dots with a thumbnail last, on top, so that the pointer finds them
    dots = []
    for i in order:
        k = 0 if labels is None else int(labels[i])
        name = class_name(names, k)
        thumb = f' data-t="{cell[int(i)]}" r="3.2"' if int(i) in cell else ' r="2"'
        dots.append(f'<circle cx="{xy[i, 0]:.1f}" cy="{xy[i, 1]:.1f}"{thumb} fill="{run_colour(k)}" '
                    f'data-i="{i}" data-c="{escape(name)}"/>')
    legend = ""
    if labels is not None:
        present = sorted(set(labels.tolist()))
        legend = " ".join(f'<span class="key" style="color:{run_colour(k)}">&#9679; '
                          f'{escape(class_name(names, k))}</span>' for k in present)
    how = {"identity": "the 2-D latent itself", "strip": "the 1-D latent against a seeded jitter",
           "pca": "the first two principal axes of the posterior means"}[description["method"]]
    caption = (f"Posterior means of {len(shown):,} test examples, in {how} ({escape(xlabel)} across, "
               f"{escape(ylabel)} up), coloured by class. Hover a dot: the example and its reconstruction.")
    return (f'<div class="latent" id="{map_id}"><p>{legend}</p><svg class="map" width="{SIZE}" height="{SIZE}" '
            f'viewBox="0 0 {SIZE} {SIZE}" data-sprite="{map_id}-sprite">{"".join(dots)}</svg>{sprite_html}'
            f'<p class="note">{caption}</p>'
            + "".join(f'<p class="why">{escape(n)}</p>' for n in notes) + "</div>")



def class_name(names, k: int) -> str:
    return str(names[k]) if names and k < len(names) else str(k)
