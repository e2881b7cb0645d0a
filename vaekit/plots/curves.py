"""Training curves from a run's metrics.jsonl: one panel per term the objective reports."""
from __future__ import annotations

import math
from pathlib import Path
from typing import List

from matplotlib.ticker import MaxNLocator

from ..errors import VaekitError
from ..rundir import read_metrics
from .common import PathLike, new_figure, save_figure

LABELS = {"elbo": "ELBO (nats, higher is better)", "iwae": "IWAE bound (nats, higher is better)",
          "recon": "reconstruction -log p(x|z) (nats)", "kl": "KL(q(z|x) || p(z)) (nats)"}
NOT_TERMS = {"epoch", "step", "kl_weight", "seconds"}
MAX_PANELS = 4


def _terms(rows: List[dict]) -> List[str]:
    """The terms in the rows, known ones first (elbo, iwae, recon, kl), at most MAX_PANELS."""
    found = []
    for row in rows:
        for key in row:
            split, _, term = key.partition("_")
            if split in ("train", "val") and term and term not in found and key not in NOT_TERMS:
                found.append(term)
    known = [t for t in LABELS if t in found]
    return (known + [t for t in found if t not in known and not t.startswith("loss")])[:MAX_PANELS]


def _series(rows: List[dict], key: str) -> List[float]:
    """Values of ``key`` per row, NaN where missing or None (so the line has a gap)."""
    out = []
    for row in rows:
        value = row.get(key)
        out.append(float(value) if isinstance(value, (int, float)) else math.nan)
    return out


def plot_curves(metrics_path: PathLike, path: PathLike) -> Path:
    """Plot train and validation terms (ELBO, reconstruction, KL, ...) against epoch; returns the path.

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

    terms = _terms(rows) or ["loss"]
    fig, axes = new_figure(4.0 * len(terms), 3.6, ncols=len(terms), squeeze=False)
    axes = list(axes[0])
    for ax, term in zip(axes, terms):
        ylabel = LABELS.get(term, f"{term} (per example)")
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
    if "kl" in terms and any(w < 1 for w in weights if not math.isnan(w)):  # the warm-up on the KL panel
        twin = axes[terms.index("kl")].twinx()
        twin.plot(epochs, weights, ":", color="grey")
        twin.set_ylim(0, 1.05)
        twin.set_ylabel("KL weight (dotted)", fontsize="small", color="grey")
    fig.suptitle(f"training curves: {Path(metrics_path).parent.name or metrics_path}", fontsize="medium")
    return save_figure(fig, path)
