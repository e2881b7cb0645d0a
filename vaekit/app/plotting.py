"""Plots of a run directory, looked up in the PLOTS registry and written into RUN/plots/."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

from .. import plots as _plots  # noqa: F401  (registers plots)
from .. import faults, rundir
from ..registry import PLOTS
from ..run import Run, as_run
from .card import write_card
from .workflows import require_suffix, run_data


def plot_run(run, kind: str, out: Optional[str] = None, method: str = "pca", split: str = "test", n: int = 15,
             label: Optional[int] = None, data=None, source: Optional[str] = None) -> Path:
    """Write one registered plot of ``run`` (a run directory or its :class:`Run`; ``vaekit plot RUN KIND``);
    returns its path. ``data`` (the ``split`` of the run's data) may be passed in when already loaded;
    ``source``: other data than the run's own (``--data``; an imported run has none).
    """
    plot = PLOTS.get(kind)
    require_suffix(out, ".png", "--out")
    run = as_run(run)
    path = Path(out) if out else run.dir / rundir.PLOTS / f"{kind}.png"
    model = None
    if plot.uses_model:
        model = run.model
        plot.check(model, run.info)
        if data is None and plot.uses_data:
            data = run_data(run, source, split)
    drawn = plot.draw(model, data, path, run=run.dir, info=run.info, method=method, n=n, label=label)
    if out is None:
        write_card(run)  # the card shows the run's pictures
    return drawn


def write_all_plots(run: Run, skipped: Optional[Callable[[str], None]] = None) -> List[Path]:
    """Every registered plot that applies to the run's model and data; the data is loaded once.
    ``skipped(message)`` hears, in one line each, why the others were left out."""
    applicable = []
    for name in PLOTS.names():
        reason = PLOTS.get(name).applies_to(run.model, run.info)
        if reason is None:
            applicable.append(name)
        elif skipped:
            skipped(f"no {name} plot: it does not apply to the {run.model.name} model: {reason}")
    data = None
    if any(PLOTS.get(k).uses_data for k in applicable):  # the split training loaded, else read again
        data = run.test_data if run.test_data is not None else run_data(run, None, "test")
    written = []
    for kind in applicable:
        faults.point("plot")  # the SIGKILL test's "killed while plotting" (vaekit/faults.py)
        written.append(plot_run(run, kind, data=data))
    return written
