"""``vaekit report RUN [RUN ...]``: one self-contained HTML file of one run, or of several side by side.

The file opens offline in any browser: its style, script and pictures are inline (PNG as base64,
curves and the latent map as SVG). A run still training gets a report of what exists so far.
"""
from __future__ import annotations

import time
from html import escape
from pathlib import Path
from typing import List, Optional, Sequence

from .. import __version__, rundir
from ..errors import VaekitError
from ..registry import PLOTS
from ..run import Run
from .curves import curves_html
from .html import page
from .latent_map import THUMB_BYTES, latent_map_html
from .sections import (compare_metrics_html, config_html, configs_html, metrics_html, pictures_html,
                       same_examples_html, why)


class _Report:
    """What the report reads of one run, each loaded once: model (None without weights), test data, rows."""

    def __init__(self, path, name: str):
        from ..plots.common import data_kind

        self.run, self.name = Run(rundir.require_run(path)), name
        self.training = rundir.training_now(self.run.dir)
        metrics = self.run.dir / rundir.METRICS
        self.rows = self.run.metrics(events=True) if metrics.is_file() else []
        self.model = self.run.model if self.run.weights().is_file() else None
        self.data, self.no_data = None, None
        if self.model is not None:
            from ..app.workflows import run_data

            try:
                self.data = run_data(self.run, None, "test")
            except VaekitError as e:  # an imported run has no data of its own: the rest is still shown
                self.no_data = str(e)
        self.images = self.model is not None and data_kind(self.model, self.run.info) == "image"

    @property
    def epochs(self) -> int:
        return max((r["epoch"] for r in self.rows if "event" not in r and isinstance(r.get("epoch"), int)), default=0)

    def banner(self) -> str:
        if self.training is None:
            return ""
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(self.training.get("started", 0))))
        weights = "" if self.model is not None else "; no weights yet, so no pictures or latent map"
        return (f"{self.name} is still training (process {self.training['pid']} on {self.training['host']}, since "
                f"{since}): this report shows what exists so far, {self.epochs} of {self.run.config.train.epochs} "
                f"epochs{weights}.")

    def units(self) -> str:
        from ..evaluate.units import CONDITIONAL, units

        return units(self.run.info) + (f"; {CONDITIONAL}" if self.run.config.model.conditional else "")

    def pictures(self) -> str:
        if self.model is None:
            return why("No pictures: the run has no weights yet (no epoch has finished).")
        if self.no_data:
            return why(f"No pictures: {self.no_data}.")
        return pictures_html(self.run, self.model, self.data)

    def latent_map(self, thumb_bytes: int) -> str:
        if self.model is None:
            return why("No latent map: the run has no weights yet (no epoch has finished).")
        reason = PLOTS.get("latent").applies_to(self.model, self.run.info)
        if reason or self.no_data:
            return why(f"No latent map: {reason or self.no_data}.")
        return latent_map_html(self.model, self.data, self.run.info, f"map-{escape(self.name)}".replace(" ", "-"),
                               thumb_bytes=thumb_bytes)


def report_html(paths: Sequence, thumb_bytes: int = THUMB_BYTES) -> str:
    """The report's HTML for the runs in ``paths`` (run directories)."""
    from ..app.compare_table import run_names

    if not paths:
        raise VaekitError("give at least one run directory to report on")
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        raise VaekitError("a run is given twice; give each run directory once")
    names = run_names([str(p) for p in paths]) if len(paths) > 1 else [Path(paths[0]).resolve().name]
    runs = [_Report(p, n) for p, n in zip(paths, names)]
    banner = " ".join(r.banner() for r in runs if r.banner())
    footer = f"Written by vaekit {__version__} on {time.strftime('%Y-%m-%d %H:%M')} from " + \
             ", ".join(str(r.run.dir) for r in runs) + "."
    if len(runs) == 1:
        r = runs[0]
        sections = [("Configuration", config_html(r.run.config)), ("Evaluation", metrics_html(r.run.evaluations,
                                                                                              r.units())),
                    ("Training curves", curves_html([(r.name, r.rows)])), ("Pictures", r.pictures()),
                    ("Latent map", r.latent_map(thumb_bytes))]
        return page(f"vaekit report: {r.name}", banner, sections, footer)
    sections = [("Runs", configs_html(names, [r.run.config for r in runs])),
                ("Evaluation", compare_metrics_html(names, [r.run.evaluations for r in runs], runs[0].units())),
                ("Training curves, on shared axes", curves_html([(r.name, r.rows) for r in runs])),
                ("The same examples, reconstructed by each run",
                 same_examples_html(names, [r.model for r in runs], [r.data if r.images else None for r in runs]))]
    for r in runs:
        sections.append((f"{r.name}: pictures and latent map",
                         r.pictures() + r.latent_map(thumb_bytes // len(runs))))
    return page(f"vaekit report: {', '.join(names)}", banner, sections, footer)


def write_report(paths: Sequence, out: Optional[str] = None) -> Path:
    """Write the report of the runs in ``paths`` to ``out`` (default report.html); returns its path."""
    from ..app.workflows import require_suffix

    require_suffix(out, ".html", "--out")
    return rundir.write_text(Path(out or "report.html"), report_html(list(paths)))


__all__: List[str] = ["report_html", "write_report"]
