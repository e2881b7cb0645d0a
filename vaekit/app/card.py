"""RUN/README.md: the run's model card, in the Hugging Face Hub's format.

A run directory is already the Hub's shape (config.json plus safetensors); the card makes it a
model repository a person can read: YAML metadata (``library_name: vaekit``, tags, the dataset,
the evaluation numbers as ``model-index`` results), then the variant and its paper, the command
that trains the same run again, the numbers with their meanings, the pictures in plots/, and how
to load it. ``vaekit train``, ``vaekit evaluate`` and the plots write it again, so it always says
what the run holds now. It needs neither torch nor huggingface_hub.
"""
from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from .. import __version__, rundir
from ..config import RunConfig
from ..data.builtin import canonical_name
from ..registry import VARIANTS
from .options import OPTIONS, apply_variant, base_config

LOAD_PY = """import vaekit

run = vaekit.open_run("{path}")  # or "hf://ORG/NAME" once pushed with `vaekit push`
model = run.model  # the torch module; run also has .config, .info, .evaluations, .samplers
x = model.sample(16)
"""


def write_card(run) -> Path:
    """Write RUN/README.md for ``run`` (a :class:`vaekit.run.Run`) from what its directory holds now."""
    return rundir.write_text(Path(run.dir) / rundir.CARD, model_card(run.dir, run.config))


def model_card(path, cfg: RunConfig) -> str:
    path = Path(path)
    evaluations = rundir.read_evaluations(rundir.evaluation_path(path))
    variant = VARIANTS.get(cfg.model.variant)
    lines = ["---", *_metadata(path, cfg, evaluations), "---", "", f"# {path.name}", "",
             f"A **{variant.name}** model trained with [vaekit](https://pypi.org/project/vaekit/) {__version__}: "
             f"{variant.description}", "", f"Paper: {variant.paper}.", "", "## Training", "",
             "```bash", reproduce_command(cfg), "```", ""]
    lines += _training(path, cfg)
    lines += _evaluation(evaluations)
    lines += _pictures(path)
    lines += ["## Use", "", "```python", LOAD_PY.format(path=path.name).rstrip(), "```", "",
              "`vaekit sample RUN`, `vaekit encode RUN`, `vaekit evaluate RUN` and `vaekit plot RUN KIND` work "
              "on the downloaded folder.", ""]
    return "\n".join(lines)


def reproduce_command(cfg: RunConfig) -> str:
    """A ``vaekit train`` command that builds the same config: the data, the recipe or variant, then
    the option (``--epochs 20``) or ``--set PATH=VALUE`` of every value that differs from what those give
    (parts' names before their args)."""
    base = base_config(cfg.recipe).to_dict()
    words = ["vaekit", "train", "--data", cfg.data.source] + (["--recipe", cfg.recipe] if cfg.recipe else [])
    if cfg.model.variant != base["model"]["variant"]:
        apply_variant(base, cfg.model.variant)
        words += ["--model", cfg.model.variant]
    own = cfg.to_dict()
    sections = ("model", "train", "data", "log")
    changed = [(p, v) for p, v in _leaves(own) if _get(base, p) != v and p.split(".")[0] in sections
               and p not in ("data.source", "model.variant", "model.data_shape", "model.num_classes")]
    changed.sort(key=lambda pv: (not pv[0].endswith(".name"), pv[0]))
    flags = {o.path: o for o in OPTIONS if o.type in (int, float, str) and o.parse is None and not o.choices}
    for p, v in changed:
        plain = p in flags and isinstance(v, flags[p].type) and not isinstance(v, bool)
        words += [flags[p].flag, str(v)] if plain else ["--set", f"{p}={_set_value(v)}"]
    return " ".join(shlex.quote(w) for w in words)


def _set_value(value: Any) -> str:
    """How ``--set`` reads it back (:func:`~vaekit.app.options.parse_set`): JSON, or the text itself."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value)


def _leaves(d: dict, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """(path, value) of every value of a config dict; a part's args and empty dicts are leaves too."""
    for key, value in d.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _get(d: dict, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _metadata(path: Path, cfg: RunConfig, evaluations: dict) -> List[str]:
    """The card's YAML front matter, written as JSON values (JSON is YAML): the Hub reads it."""
    data = canonical_name(cfg.data.source)
    tags = ["vaekit", "variational-autoencoder", cfg.model.variant, cfg.model.network.name]
    meta: Dict[str, Any] = {"library_name": "vaekit", "tags": list(dict.fromkeys(tags))}
    if data:
        meta["datasets"] = [data]
    results = [{"task": {"type": "other", "name": "variational autoencoding"},
                "dataset": {"name": f"{e['data']} ({e['split']})" if not canonical_name(e["data"]) else
                            f"{canonical_name(e['data'])} ({e['split']})", "type": canonical_name(e["data"]) or
                            "custom", "split": e["split"]},
                "metrics": [{"type": k, "name": k, "value": v} for k, v in _numbers(e)]}
               for e in evaluations.values() if isinstance(e, dict) and _numbers(e)]
    if results:
        meta["model-index"] = [{"name": path.name, "results": results}]
    return [f"{key}: {json.dumps(value)}" for key, value in meta.items()]


def _numbers(evaluation: dict) -> List[Tuple[str, float]]:
    """The finite numbers of one saved evaluation (not its bookkeeping: n, epoch, seed)."""
    skip = {"n", "epoch", "metrics_seed"}
    return [(k, v) for k, v in evaluation.items() if k not in skip and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)]


def _training(path: Path, cfg: RunConfig) -> List[str]:
    rows = rundir.read_metrics(path / rundir.METRICS) if (path / rundir.METRICS).is_file() else []
    info = cfg.data_info or {}
    lines = [f"- data: `{cfg.data.source}` ({info.get('kind', 'data')} of shape {tuple(info.get('shape', ()))})",
             f"- model: {cfg.model.network.name} network, latent {cfg.model.latent_dim}, "
             f"{cfg.model.likelihood.name} likelihood, {cfg.train.objective.name} objective",
             f"- trained: {rows[-1]['epoch'] if rows else 0} of {cfg.train.epochs} epochs"]
    val = [(k, v) for k, v in (rows[-1] if rows else {}).items() if k.startswith("val_") and isinstance(v, float)]
    if val:
        lines.append("- last validation: " + ", ".join(f"{k[4:]} {v:.4g}" for k, v in val))
    return lines + [""]


def _evaluation(evaluations: dict) -> List[str]:
    if not evaluations:
        return ["## Evaluation", "", "Not evaluated yet: `vaekit evaluate RUN` adds the numbers here.", ""]
    from ..evaluate import meanings  # the metrics registry: only when there are numbers to explain

    lines = ["## Evaluation", ""]
    for key, e in evaluations.items():
        lines += [f"On `{e.get('data')}`, {e.get('split')} split, {e.get('checkpoint')} weights"
                  + (f" (epoch {e['epoch']})" if e.get("epoch") is not None else "")
                  + (f", {e['n']} examples" if e.get("n") else "") + ":", "", "| metric | value | meaning |",
                  "|---|---|---|"]
        means = meanings(e.get("metrics", []))
        lines += [f"| {k} | {v:.4g} | {means.get(k, '')} |" for k, v in _numbers(e)]
        lines += [f"| {name} | n/a | {why} |" for name, why in e.get("why_not", {}).items()] + [""]
    return lines


def _pictures(path: Path) -> List[str]:
    pictures = sorted((path / rundir.PLOTS).glob("*.png")) if (path / rundir.PLOTS).is_dir() else []
    if not pictures:
        return []
    return ["## Pictures", ""] + [f"![{p.stem}]({rundir.PLOTS}/{p.name})" for p in pictures] + [""]

