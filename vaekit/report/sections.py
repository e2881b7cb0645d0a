"""The report's sections of one run or several: the config, the evaluations, the pictures and the
same examples reconstructed by each run. Each returns HTML; what does not apply says why in one line."""
from __future__ import annotations

import tempfile
from html import escape
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..config import Part
from ..registry import PLOTS, VARIANTS
from ..app.card import _numbers, reproduce_command
from .latent_map import data_uri, png_bytes

PICTURES = ("samples", "reconstructions", "traversal", "interpolation")
EXAMPLES = 8  # the examples every run reconstructs, side by side


def why(text: str) -> str:
    return f'<p class="why">{escape(text)}</p>'


def parts(cfg) -> List[Tuple[str, Part]]:
    """(role, part) of every part of the model and its training, e.g. ("model.network", Part("mlp", ...))."""
    found = [(f"model.{k}", v) for k, v in vars(cfg.model).items() if isinstance(v, Part)]
    found += [(f"train.{k}", v) for k, v in vars(cfg.train).items() if isinstance(v, Part)]
    found += [(f"train.group_optimizers.{k}", v) for k, v in cfg.train.group_optimizers.items()]
    return found + [(f"train.val_metrics[{i}]", v) for i, v in enumerate(cfg.train.val_metrics)]


def _args(part: Part) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in part.args.items()) or "defaults"


def config_rows(cfg) -> List[Tuple[str, str]]:
    """The config as (what, value) text rows."""
    variant = VARIANTS.get(cfg.model.variant)
    info = cfg.data_info or {}
    shape = "×".join(map(str, info.get("shape", cfg.model.data_shape or [])))
    classes = f", {cfg.model.num_classes} classes" if cfg.model.num_classes else ""
    rows = [("variant", f"{variant.name}: {variant.description}"), ("paper", variant.paper or "-"),
            ("data", f"{cfg.data.source} ({info.get('kind', 'data')} of shape {shape}{classes}; "
                     f"validation fraction {cfg.data.val_fraction})"),
            ("recipe", cfg.recipe or "none (the defaults)"),
            ("latent", f"{cfg.model.latent_dim} dimensions" + (", conditional on the label" if cfg.model.conditional
                                                               else ""))]
    rows += [(role, f"{part.name} ({_args(part)})") for role, part in parts(cfg)]
    rows += [("training", f"{cfg.train.epochs} epochs, batch {cfg.train.batch_size}, learning rate {cfg.train.lr}, "
                          f"seed {cfg.train.seed}, KL warm-up {cfg.train.warmup_epochs} epochs, {cfg.train.precision}")]
    return rows


def config_html(cfg) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in config_rows(cfg))
    return (f'<table class="config">{rows}</table><p>The same run again:</p>'
            f"<pre>{escape(reproduce_command(cfg))}</pre>")


def configs_html(names: Sequence[str], cfgs: Sequence) -> str:
    """Several runs' configs as one table, a column per run; rows that differ are marked."""
    tables = [dict(config_rows(c)) for c in cfgs]
    keys = list(dict.fromkeys(k for t in tables for k in t))
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = "".join(f'<tr{" class=differs" if len({t.get(k) for t in tables}) > 1 else ""}><th>{escape(k)}</th>'
                   + "".join(f"<td>{escape(t.get(k, '-'))}</td>" for t in tables) + "</tr>" for k in keys)
    return f'<table class="config"><tr><th></th>{head}</tr>{body}</table><p class="note">The rows in red differ.</p>'


def chosen_evaluation(evaluations: dict) -> Optional[dict]:
    """The evaluation to compare runs by: the test split with the last weights if saved, else the first."""
    entries = [e for e in evaluations.values() if isinstance(e, dict)]
    best = [e for e in entries if e.get("split") == "test" and e.get("checkpoint") == "last"]
    return (best or entries or [None])[0]


def _where(e: dict) -> str:
    return (f"{e.get('data')}, {e.get('split')} split, {e.get('checkpoint')} weights"
            + (f", epoch {e['epoch']}" if e.get("epoch") is not None else "")
            + (f", {e['n']} examples" if e.get("n") else ""))


def _lists(evaluation: dict) -> List[Tuple[str, list]]:
    """The per-dimension numbers of an evaluation (kl_per_dim...)."""
    return [(k, v) for k, v in evaluation.items() if isinstance(v, list) and v and k not in ("metrics",)
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)]


def _show(value) -> str:
    return " ".join(f"{x:.4g}" for x in value) if isinstance(value, list) else f"{value:.6g}"


def metrics_html(evaluations: dict, units: str) -> str:
    """Every saved evaluation of one run: metric, value, meaning; and why the others were not computed."""
    if not evaluations:
        return why("Not evaluated yet: `vaekit evaluate RUN` saves the numbers this section shows.")
    from ..evaluate import meanings

    out = []
    for e in (e for e in evaluations.values() if isinstance(e, dict)):
        means = meanings(e.get("metrics", []))
        rows = "".join(f"<tr><th>{escape(k)}</th><td class=num>{_show(v)}</td><td>{escape(means.get(k, ''))}</td></tr>"
                       for k, v in _numbers(e) + _lists(e))
        rows += "".join(f"<tr><th>{escape(k)}</th><td>n/a</td><td>{escape(w)}</td></tr>"
                        for k, w in e.get("why_not", {}).items())
        out.append(f"<h3>{escape(_where(e))}</h3><table><tr><th>metric</th><th>value</th><th>meaning</th></tr>"
                   f"{rows}</table>")
    return "".join(out) + f'<p class="note">Units: {escape(units)}.</p>'


def compare_metrics_html(names: Sequence[str], evaluations: Sequence[dict], units: str) -> str:
    """One table, a row per metric and a column per run (each run's :func:`chosen_evaluation`)."""
    from ..evaluate import meanings

    chosen = [chosen_evaluation(e) for e in evaluations]
    if not any(chosen):
        return why("No run is evaluated yet: `vaekit evaluate RUN` (or `vaekit compare RUN ...`) saves the numbers.")
    values = [dict(_numbers(e)) if e else {} for e in chosen]
    means: Dict[str, str] = {}
    for e in chosen:
        means.update(meanings(e.get("metrics", [])) if e else {})
    keys = list(dict.fromkeys(k for v in values for k in v))
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = "".join(f"<tr><th>{escape(k)}</th>" + "".join(
        f"<td class=num>{v[k]:.6g}</td>" if k in v else "<td>-</td>" for v in values)
        + f"<td>{escape(means.get(k, ''))}</td></tr>" for k in keys)
    where = "".join(f"<li>{escape(n)}: {escape(_where(e)) if e else 'not evaluated'}</li>"
                    for n, e in zip(names, chosen))
    return (f"<table><tr><th>metric</th>{head}<th>meaning</th></tr>{body}</table><ul class=note>{where}</ul>"
            f'<p class="note">Units: {escape(units)}. "-": not computed for that run.</p>')


def pictures_html(run, model, data) -> str:
    """Samples, reconstructions, traversals and interpolations drawn by the plots, inlined; a plot that
    does not apply says why."""
    from ..app.plotting import plot_run

    out = []
    with tempfile.TemporaryDirectory(prefix="vaekit-report-") as tmp:
        for kind in PICTURES:
            plot = PLOTS.get(kind)
            reason = plot.applies_to(model, run.info)
            if reason:
                out.append(f"<h3>{escape(kind)}</h3>" + why(f"No {kind}: {reason}."))
                continue
            path = plot_run(run, kind, out=str(Path(tmp) / f"{kind}.png"), data=data)
            out.append(f'<figure><figcaption>{escape(kind)}: {escape(plot.title)}</figcaption>'
                       f'<img alt="{escape(kind)}" src="{data_uri(path.read_bytes())}"></figure>')
    return f'<div class="pictures">{"".join(out)}</div>'


def same_examples_html(names: Sequence[str], models: Sequence, datas: Sequence) -> str:
    """The first run's test examples (seeded choice) on top, each run's reconstruction of them below."""
    from ..plots.grid import image_grid, upscale_factor
    from ..plots.recon import reconstruction_pairs

    base = next((d for d in datas if d is not None), None)
    if base is None:
        return why("No run has weights and image data to reconstruct examples with.")
    count = min(EXAMPLES, len(base))
    subset = base.subset(torch.randperm(len(base), generator=torch.Generator().manual_seed(0))[:count].sort().values)
    scale = upscale_factor(*subset.x.shape[2:])
    rows, labels, notes = [image_grid(subset.x, count, scale=scale)], ["originals"], []
    for name, model, data in zip(names, models, datas):
        if data is None or tuple(model.data_shape) != tuple(subset.x.shape[1:]):
            shape = tuple(subset.x.shape[1:])
            notes.append(f"{name}: not shown: " + ("it has no weights yet." if model is None else
                                                   f"it was not trained on images of shape {shape}."))
            continue
        rows.append(image_grid(reconstruction_pairs(model, subset, count)[1], count, scale=scale))
        labels.append(name)
    cells = "".join(f'<tr><th>{escape(n)}</th><td><img alt="{escape(n)}" src="{data_uri(png_bytes(r))}"></td></tr>'
                    for n, r in zip(labels, rows))
    return f'<table class="same">{cells}</table>' + "".join(why(n) for n in notes)

