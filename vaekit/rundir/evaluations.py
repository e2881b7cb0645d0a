"""RUN/evaluation.json: what ``vaekit evaluate`` computed, read back by ``vaekit compare``.

A JSON object keyed by :func:`evaluation_key` (data, split, checkpoint, seed); each value holds
the numbers, the metrics computed or found not to apply, their options and the fingerprint of
the weights they are of (:func:`~vaekit.rundir.files.weights_fingerprint`).
"""
from __future__ import annotations

import json
from pathlib import Path

from .files import EVALUATION, read_json_object, write_text


def evaluation_path(run) -> Path:
    return Path(run) / EVALUATION


def evaluation_key(result: dict) -> str:
    """Saved evaluations are kept per data, split, checkpoint, seed and the epoch of the weights (a run
    evaluated while it trains keeps each epoch's numbers; results saved before epochs were recorded
    have no epoch in their key)."""
    key = f"{result['data']}:{result['split']}:{result['checkpoint']}:seed{result.get('metrics_seed', 0)}"
    return key if result.get("epoch") is None else f"{key}:epoch{result['epoch']}"


def read_evaluations(path) -> dict:
    """The saved evaluations in the JSON file ``path`` ({} when there are none yet)."""
    return read_json_object(path, "evaluation file", fix="delete it and evaluate again")


def save_evaluation(path, result: dict) -> Path:
    """Merge ``result`` into the JSON file at ``path`` (a dict keyed by :func:`evaluation_key`), atomically.

    Numbers of other weights (a retrained or resumed run) are replaced, never mixed with these."""
    path = Path(path)
    saved = read_evaluations(path)
    key = evaluation_key(result)
    old = saved.get(key, {})
    if old.get("weights") != result.get("weights"):
        old = {}
    merged = {**old, **result}
    for field in ("metrics", "not_applicable"):
        merged[field] = list(dict.fromkeys(old.get(field, []) + result.get(field, [])))
    merged["options"] = {**old.get("options", {}), **result.get("options", {})}
    saved[key] = merged
    return write_text(path, json.dumps(saved, indent=2, allow_nan=False) + "\n")  # a failure says why
