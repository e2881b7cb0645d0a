"""``vaekit evaluate`` and ``vaekit compare``: metrics of a run, saved in RUN/evaluation.json.

Saved numbers are keyed by data, split and checkpoint, and carry a fingerprint of the weights
they were computed from, the seed and each metric's options, so ``compare`` reuses them only
when they would come out the same. The file is read and written by :mod:`vaekit.rundir.evaluations`.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .. import rundir
from ..contract.keys import key_layer
from ..data.types import TensorData
from ..errors import VaekitError
from ..evaluate import EvalContext, compute_metrics, meanings
from ..evaluate.units import likelihood_name
from ..evaluate.base import expand
from ..registry import METRICS
from ..rundir import evaluation_key, read_evaluations, save_evaluation, weights_fingerprint
from ..run import Run, open_run
from .card import write_card
from .options import parse_set
from .workflows import load_run_data, require_suffix, run_splits

GROUPS = ("all", "default")


def parse_metrics(text: str) -> List[str]:
    """``"elbo,nll"`` -> ["elbo", "nll"]; the groups ``all`` and ``default`` stay; unknown names are an error."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise VaekitError("--metrics needs at least one metric name, e.g. --metrics elbo,nll")
    for name in names:
        if name not in GROUPS:
            METRICS.get(name)
    return names


def shortcut_options(given: Dict[str, object]) -> Tuple[Dict[str, dict], List[str]]:
    """What command-line shortcuts stand for, as the metrics declare them (``Metric.shortcuts``):
    ``{"--k": 100, "--fid-weights": None}`` -> ``({"nll": {"k": 100}}, ["nll"])``, the metrics' options and
    the metrics the shortcuts add (``Metric.shortcut_adds``). A shortcut left unset (None or 0) stands
    for nothing."""
    options: Dict[str, dict] = {}
    added: List[str] = []
    for name in METRICS.names():
        metric = METRICS.get(name)
        for flag, arg in metric.shortcuts.items():
            if given.get(flag):
                options.setdefault(name, {})[arg] = given[flag]
                added += [name] if metric.shortcut_adds else []
    return options, added


def metric_options(sets: Sequence[str], fid_weights: Optional[str] = None,
                   names: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    """``["knn.k=10"]`` -> {"knn": {"k": 10}}; ``--fid-weights`` is fid's ``weights`` (its shortcut), and
    rfid's: of the metrics ``names`` computes, where it computes one of them."""
    options: Dict[str, dict] = {}
    for item in sets:
        if "=" not in str(item):
            raise VaekitError(f"--set takes METRIC.ARG=VALUE for evaluate, like knn.k=10; got {item!r}")
        path, value = parse_set(item)
        metric, _, arg = path.partition(".")
        if not arg or "." in arg:
            raise VaekitError(f"--set takes METRIC.ARG=VALUE for evaluate, like knn.k=10; got {item!r}")
        METRICS.get(metric)
        options.setdefault(metric, {})[arg] = value
    shortcuts = shortcut_options({"--fid-weights": fid_weights})[0]
    computed = {n for n, _ in expand(names or [])} & set(shortcuts)
    for metric, args in shortcuts.items():
        if not computed or metric in computed:
            options.setdefault(metric, {}).update(args)
    return options


def reference_split(run: Run, source: Optional[str] = None) -> TensorData:
    """Every non-test example of the run's data (or ``source``) in the dataset's own order, whatever
    the run's seed and validation share: what yardsticks shared across runs are fitted on."""
    return load_run_data(run, source, val_fraction=0, seed=0).train


def evaluate_run(path, source: Optional[str] = None, split: str = "test", seed: int = 0,
                 checkpoint: str = "last", device: str = "cpu", iw_samples: int = 0,
                 metrics: Sequence[str] = ("default",), options: Optional[Dict[str, dict]] = None,
                 skipped=None, save: Optional[str] = None, strict: bool = True) -> dict:
    """The named metrics of a run on one split (groups: ``all``, ``default``). ``iw_samples`` K > 0
    adds the importance-sampled log p(x) with K samples. With ``save`` (a .json path) the result
    is merged into that file (see :func:`vaekit.rundir.save_evaluation`), for ``vaekit compare``.
    Not ``strict``, a metric named on its own that does not apply is skipped like a group's
    (``not_applicable``, with its reason in ``why_not``) instead of failing."""
    names = list(metrics)
    options = {k: dict(v) for k, v in (options or {}).items()}
    implied, added = shortcut_options({"--k": iw_samples})
    for metric, args in implied.items():
        options.setdefault(metric, {}).update(args)
    names += [n for n in added if n not in names and "all" not in names]
    computed = {n for n, _ in expand(names)}
    for name in options:
        if name not in computed:
            group = METRICS.get(name).group
            part = f" (part of the {group} group: set {group}'s options instead)" if group else ""
            raise VaekitError(f"--set {name}.* applies to the {name} metric, which is not computed here{part}")
    if save is not None:
        require_suffix(save, ".json", "--out")
        read_evaluations(save)  # a file that is not an evaluation is refused before any work
    run = open_run(path, checkpoint=checkpoint, device=device)
    model, source_name = run.model, source or run.config.data.source
    data, splits = run_splits(run, source, split)
    ctx = EvalContext(train=splits.train, source=source_name, info=splits.info, seed=seed,
                      reference=lambda: reference_split(run, source), objective=run.objective,
                      lpips=vars(run.config.lpips))
    done, not_applicable, why_not = [], [], {}

    def skip(name: str, reason: str) -> None:
        not_applicable.append(name)
        why_not[name] = reason
        if skipped:
            skipped(f"skipped {name}: {reason}")

    result = compute_metrics(model, data, names, options, ctx, skipped=skip, done=done, strict=strict)
    result.update({"run": str(path), "data": source_name, "split": split, "checkpoint": checkpoint,
                   "epoch": rundir.saved_epoch(path, checkpoint), "n": len(data),
                   "likelihood": likelihood_name(model), "metrics": done, "not_applicable": not_applicable,
                   "why_not": why_not, "metrics_seed": seed, "options": {n: options.get(n, {}) for n in done},
                   "weights": weights_fingerprint(path, checkpoint)})
    if split == "train" and {"knn", "probe", "latent"} & set(done):
        result["latent_note"] = ("knn and probe accuracies are scored on the split they were fitted on, so they "
                                 "are optimistic; use --split test")
    result = finite_or_null(result)
    if save is not None:
        save_evaluation(save, result)
        record_evaluation(run, save, result)
    return result


def record_evaluation(run: Run, saved, result: dict) -> None:
    """When ``saved`` (where ``result`` was just saved) is the run's own evaluation.json: the model card says
    the new numbers, and the run's experiment trackers get them (``evaluate/NAME`` at its last step)."""
    if Path(saved).resolve() != rundir.evaluation_path(run.dir).resolve():
        return
    write_card(run)
    if run.config.log.trackers:
        from ..track.fanout import Trackers

        rows = run.metrics()
        numbers = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and k not in ("n", "epoch", "metrics_seed")}
        trackers = Trackers(run.config, run.dir, notice=lambda m: print(m, file=sys.stderr))
        trackers.summary(numbers, rows[-1]["step"] if rows else 0)
        trackers.close()


def finite_or_null(result: dict) -> dict:
    """NaN numbers become null (valid JSON), infinite ones the strings "inf" and "-inf" (a PSNR of exact
    reconstructions; ``float()`` reads them back); both are listed under ``nonfinite``."""
    bad = [k for k, v in result.items() if isinstance(v, float) and not math.isfinite(v)]
    if not bad:
        return result
    out = {k: (None if math.isnan(v) else str(v)) if k in bad else v for k, v in result.items()}
    out["nonfinite"] = bad
    return out


def reusable(saved: dict, names: List[str], seed: int, iw_samples: int, weights: str) -> bool:
    """Whether a saved evaluation already holds what ``compare`` would compute for these weights:
    the same seed, every wanted metric computed (or found not to apply) with compare's options."""
    if (saved.get("metrics_seed"), saved.get("weights")) != (seed, weights):
        return False
    implied, added = shortcut_options({"--k": iw_samples})
    wanted = {n for n, _ in expand(names + added)}
    computed, options = set(saved.get("metrics", [])), saved.get("options", {})
    if not wanted <= computed | set(saved.get("not_applicable", [])):
        return False
    return all(options.get(n, {}) == implied.get(n, {}) for n in wanted & computed)


def compare_runs(runs: Sequence, names: List[str], split: str = "test", checkpoint: str = "last", seed: int = 0,
                 iw_samples: int = 0, skipped=None) -> Tuple[List[dict], List[str]]:
    """One row per run with the named metrics on its own data: read from RUN/evaluation.json when
    saved for the same weights, seed and options, else computed and saved. Returns (rows, keys)."""
    rows = []
    for run in runs:
        cfg = rundir.read_config(rundir.require_run(run))
        saved_path = Path(run) / rundir.EVALUATION
        key = evaluation_key({"data": cfg.data.source, "split": split, "checkpoint": checkpoint, "metrics_seed": seed,
                              "epoch": rundir.saved_epoch(run, checkpoint)})
        saved = read_evaluations(saved_path).get(key, {})
        if not reusable(saved, names, seed, iw_samples, weights_fingerprint(run, checkpoint)):
            saved = evaluate_run(run, split=split, seed=seed, checkpoint=checkpoint, iw_samples=iw_samples,
                                 metrics=names, skipped=skipped, save=str(saved_path), strict=False)
        rows.append({**saved, "run": str(run)})
    asked = set(meanings(names + shortcut_options({"--k": iw_samples})[1]))
    keys = ["likelihood", "n"]  # what the numbers are of, then the numbers asked for
    for row in rows:
        keys += [k for k, v in row.items() if k not in keys and not isinstance(v, str) and
                 (k in asked or (key_layer(k) is not None and "kl" in asked))]
    for row in rows:  # a metric that applies to no run still gets its row of "n/a"
        keys += [k for k in meanings(row.get("not_applicable", [])) if k in asked and k not in keys]
    return rows, keys
