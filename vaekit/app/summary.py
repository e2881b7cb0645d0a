"""What ``vaekit train`` says when it is done: how long, the monitored validation value and the best
epoch, and the posterior-collapse warning that ``vaekit evaluate`` would give."""
from __future__ import annotations

from typing import Optional

from ..evaluate.decomposition import decomposition
from ..objectives import build_objective
from ..registry import METRICS


def final_line(run, seconds: float, epochs_before: int) -> str:
    """``trained 20 epochs in 41.3s -> DIR: val elbo -95.12 (best -94.80 at epoch 18)``; a resumed
    run with nothing left to train says so instead of a time."""
    rows = run.metrics()
    done = rows[-1]["epoch"] if rows else 0
    if done <= epochs_before:
        return f"nothing trained -> {run.dir} (it has {done} epoch{'s' * (done != 1)})"
    trained = done - epochs_before
    text = f"trained {trained} epoch{'s' * (trained != 1)} in {seconds:.1f}s -> {run.dir}"
    monitor, mode = build_objective(run.config).monitor
    last = rows[-1]
    if f"val_{monitor}" not in last:  # no validation split (--val-fraction 0)
        value = last.get(f"train_{monitor}")
        return text if value is None else f"{text}: train {monitor} {value:.2f}"
    values = [(row[f"val_{monitor}"], row["epoch"]) for row in rows if f"val_{monitor}" in row]
    best, at = (max if mode == "max" else min)(values)
    return f"{text}: val {monitor} {last[f'val_{monitor}']:.2f} (best {best:.2f} at epoch {at})"


def collapse_warning(model, val, objective: str, ctx) -> Optional[str]:
    """The active-units check of ``vaekit evaluate`` on the validation split, where it applies: its
    warning when no latent dimension carries information, else None. A deterministic autoencoder's
    codes have no prior to collapse to, so it is not asked."""
    if model.deterministic_posterior or not len(val) or METRICS.build("au", {}).unavailable(model, val, ctx):
        return None
    return decomposition(model, val, objective).get("warning")
