"""Training curves from a run's metrics.jsonl: ELBO, reconstruction and KL per epoch."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import List

from matplotlib.ticker import MaxNLocator

from ..errors import VaekitError
from .common import PathLike, new_figure, save_figure

PANELS = (("elbo", "ELBO (nats, higher is better)"), ("recon", "reconstruction -log p(x|z) (nats)"),
          ("kl", "KL(q(z|x) || p(z)) (nats)"))


def read_metrics(path: PathLike) -> List[dict]:
    """The rows of a metrics.jsonl, one JSON object per line.

    A last line that does not parse (a write cut short by a crash) is skipped; a broken
    line before it is an error. An empty file gives [].
    """
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path} does not exist; a run writes metrics.jsonl as it trains (`vaekit train`)")
    lines = [(i, line) for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip()]
    rows = []
    for j, (number, line) in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if j == len(lines) - 1:
                break  # truncated by a crash mid-write
            raise VaekitError(f"{path}, line {number} is not valid JSON; fix or delete that line") from None
        if not isinstance(row, dict):
            raise VaekitError(f"{path}, line {number} is not a JSON object of metrics")
        rows.append(row)
    return rows


def _series(rows: List[dict], key: str) -> List[float]:
    """Values of ``key`` per row, NaN where missing or None (so the line has a gap)."""
    out = []
    for row in rows:
        value = row.get(key)
        out.append(float(value) if isinstance(value, (int, float)) else math.nan)
    return out


def plot_curves(metrics_path: PathLike, path: PathLike) -> Path:
    """Plot train and validation ELBO, reconstruction and KL against epoch; returns the written path.

    If the epoch appears more than once (a resumed run), the last row for it is used.
    """
    rows = read_metrics(metrics_path)
    if not rows:
        raise VaekitError(f"{metrics_path} has no metric rows yet; train for at least one epoch first")
    by_epoch = {}
    for i, row in enumerate(rows):
        by_epoch[row.get("epoch", i + 1)] = row
    epochs = sorted(by_epoch)
    rows = [by_epoch[e] for e in epochs]
    marker = "o" if len(rows) <= 30 else None

    fig, axes = new_figure(12.0, 3.6, ncols=3)
    for ax, (term, ylabel) in zip(axes, PANELS):
        for split, style in (("train", "-"), ("val", "--")):
            values = _series(rows, f"{split}_{term}")
            if not all(math.isnan(v) for v in values):
                ax.plot(epochs, values, style, marker=marker, markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no 1.5-epoch ticks on short runs
        ax.set_ylabel(ylabel, fontsize="small")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize="small")
    weights = _series(rows, "kl_weight")
    if any(w < 1 for w in weights if not math.isnan(w)):  # show the KL warm-up on the KL panel
        twin = axes[2].twinx()
        twin.plot(epochs, weights, ":", color="grey")
        twin.set_ylim(0, 1.05)
        twin.set_ylabel("KL weight (dotted)", fontsize="small", color="grey")
    fig.suptitle(f"training curves: {Path(metrics_path).parent.name or metrics_path}", fontsize="medium")
    return save_figure(fig, path)
