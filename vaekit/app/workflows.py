"""What the commands do, as plain functions on a run directory (the CLI is a thin layer)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import rundir
from ..data import load_data
from ..data.types import DataSplits, TensorData
from ..errors import VaekitError
from ..evaluate import EvalContext, compute_metrics
from ..evaluate.base import expand
from ..models.helpers import posterior_moments
from ..models.load import load
from ..registry import METRICS
from .options import parse_set

SPLITS = ("test", "val", "train")


def run_data(model, source: Optional[str] = None, split: str = "test") -> TensorData:
    """A split of the run's own dataset, or of ``source`` normalized like the training data."""
    return run_splits(model, source, split)[0]


def run_splits(model, source: Optional[str] = None, split: str = "test") -> Tuple[TensorData, DataSplits]:
    """``(the chosen split, all splits)`` of the run's own dataset or of ``source``, checked against the model."""
    if split not in SPLITS:
        raise VaekitError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    cfg = model.config
    own = source is None or source == cfg.data.source
    # the training split settings (label column, validation carve) only apply to the run's own data
    splits = load_data(source or cfg.data.source, data_dir=cfg.data.data_dir,
                       label_column=cfg.data.label_column if own else None, val_fraction=cfg.data.val_fraction,
                       seed=cfg.train.seed, info=model.info)
    data = getattr(splits, split)
    if len(data) == 0:
        raise VaekitError(f"the {split} split of {source or cfg.data.source!r} is empty; choose another --split")
    name = f"{split} split of {source or cfg.data.source!r}"
    model.check_data(data.x, name)
    if model.num_classes and data.y is None:
        raise VaekitError(f"this is a conditional VAE: the {name} needs labels")
    return data, splits


def reference_split(model, source: Optional[str] = None) -> TensorData:
    """Every non-test example of the run's data (or ``source``) in the dataset's own order, whatever
    the run's seed and validation share: what yardsticks shared across runs are fitted on."""
    cfg = model.config
    own = source is None or source == cfg.data.source
    return load_data(source or cfg.data.source, data_dir=cfg.data.data_dir,
                     label_column=cfg.data.label_column if own else None, val_fraction=0, seed=0,
                     info=model.info).train


def parse_metrics(text: str) -> List[str]:
    """``"elbo,nll"`` -> ["elbo", "nll"]; ``"all"`` stays ["all"]; unknown names are a clear error."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise VaekitError("--metrics needs at least one metric name, e.g. --metrics elbo,nll")
    for name in names:
        if name not in ("all", "default"):
            METRICS.get(name)
    return names


def evaluate_run(path, source: Optional[str] = None, split: str = "test", seed: int = 0,
                 checkpoint: str = "last", device: str = "cpu", iw_samples: int = 0,
                 metrics: Sequence[str] = ("default",), options: Optional[Dict[str, dict]] = None,
                 skipped=None, save: Optional[str] = None) -> dict:
    """The named metrics of a run on one split (``["all"]``: every one that applies). ``iw_samples``
    K > 0 adds the importance-sampled log p(x) with K samples. With ``save`` (a .json path) the
    result is merged into that file under ``"<data>:<split>:<checkpoint>"``, for ``vaekit compare``."""
    if iw_samples < 0:
        raise VaekitError(f"--k must be 0 (off) or more, got {iw_samples}")
    names = list(metrics)
    options = {k: dict(v) for k, v in (options or {}).items()}
    if iw_samples:
        options.setdefault("nll", {})["k"] = iw_samples
        if "nll" not in names and "all" not in names:
            names.append("nll")
    if save is not None:
        require_suffix(save, ".json", "--out")
    model = load(path, checkpoint=checkpoint, device=device)
    data, splits = run_splits(model, source, split)
    ctx = EvalContext(train=splits.train, source=source or model.config.data.source, info=model.info, seed=seed,
                      reference=lambda: reference_split(model, source))
    torch.manual_seed(seed)
    done = []
    result = compute_metrics(model, data, names, options, ctx, skipped=skipped, done=done)
    result.update({"run": str(path), "data": source or model.config.data.source, "split": split,
                   "checkpoint": checkpoint, "n": len(data), "metrics": done, "metrics_seed": seed})
    if save is not None:
        save_evaluation(save, result)
    return result


def metric_options(sets: Sequence[str], fid_weights: Optional[str] = None) -> Dict[str, dict]:
    """``["knn.k=10"]`` -> {"knn": {"k": 10}}; ``--fid-weights`` is fid's ``weights``."""
    options: Dict[str, dict] = {}
    for item in sets:
        path, value = parse_set(item)
        metric, _, arg = path.partition(".")
        if not arg or "." in arg:
            raise VaekitError(f"--set takes METRIC.ARG=VALUE for evaluate, like knn.k=10; got {item!r}")
        METRICS.get(metric)
        options.setdefault(metric, {})[arg] = value
    if fid_weights:
        options.setdefault("fid", {})["weights"] = fid_weights
    return options


def compare_runs(runs: Sequence, names: List[str], split: str = "test", checkpoint: str = "last", seed: int = 0,
                 iw_samples: int = 0, skipped=None) -> Tuple[List[dict], List[str]]:
    """One row per run with the named metrics on its own data: read from RUN/evaluation.json when
    saved with the same seed, else computed and saved. Returns (rows, the keys in table order)."""
    rows = []
    for run in runs:
        cfg = rundir.read_config(rundir.require_run(run))
        saved_path = Path(run) / rundir.EVALUATION
        saved = read_evaluations(saved_path).get(f"{cfg.data.source}:{split}:{checkpoint}", {})
        wanted = [n for n, lenient in expand(names) if not lenient] or ["elbo"]
        have = saved.get("metrics_seed") == seed and all(n in saved.get("metrics", []) for n in wanted) and \
            (not iw_samples or saved.get("iw_samples") == iw_samples)
        if not have:
            saved = evaluate_run(run, split=split, seed=seed, checkpoint=checkpoint, iw_samples=iw_samples,
                                 metrics=names, skipped=skipped, save=str(saved_path))
        rows.append({**saved, "run": str(run)})
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys and k not in ("run", "data", "split", "checkpoint", "metrics",
                                                                 "metrics_seed", "warning", "units")]
    return rows, keys


def evaluation_key(result: dict) -> str:
    return f"{result['data']}:{result['split']}:{result['checkpoint']}"


def save_evaluation(path, result: dict) -> Path:
    """Merge ``result`` into the JSON file at ``path`` (a dict keyed by :func:`evaluation_key`)."""
    path = Path(path)
    saved = read_evaluations(path)
    key = evaluation_key(result)
    old = saved.get(key, {})
    if old.get("metrics_seed") != result.get("metrics_seed"):
        old = {}  # numbers drawn with another seed are not mixed with these
    metrics = list(dict.fromkeys(old.get("metrics", []) + result.get("metrics", [])))
    saved[key] = {**old, **result, "metrics": metrics}
    return rundir.write_text(path, json.dumps(saved, indent=2, allow_nan=False) + "\n")


def read_evaluations(path) -> dict:
    """The saved evaluations of :func:`save_evaluation` ({} when there are none yet)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VaekitError(f"{path} is not a readable evaluation file ({e}); delete it and evaluate again") from None
    if not isinstance(saved, dict):
        raise VaekitError(f"{path} is not a vaekit evaluation file; delete it and evaluate again")
    return saved


def encode_run(path, out, source: Optional[str] = None, split: str = "test", variance: bool = False) -> list:
    """Write posterior means (and variances) of a dataset to .npy or .csv; returns the paths written."""
    model = load(path)
    model.require("encode", "vaekit encode")
    data = run_data(model, source, split)
    mu, var = posterior_moments(model, data, variance=variance)
    mu, var = mu.numpy(), (None if var is None else var.numpy())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        written = [_save_npy(out, mu)]
        if variance:
            written.append(_save_npy(out.with_name(out.stem + "_var.npy"), var))
        return written
    if out.suffix == ".csv":
        d = mu.shape[1]
        cols = [f"mu_{i}" for i in range(d)] + ([f"var_{i}" for i in range(d)] if variance else [])
        table = np.concatenate([mu, var], axis=1) if variance else mu
        if data.y is not None:
            cols.append("label")
            table = np.concatenate([table, data.y.numpy()[:, None]], axis=1)
        text = ",".join(cols) + "\n" + "\n".join(",".join(_fmt(v) for v in row) for row in table) + "\n"
        return [rundir.write_text(out, text)]
    raise VaekitError(f"--out {out} must end in .npy or .csv")


def sample_run(path, n: int = 64, label: Optional[int] = None, seed: int = 0, png: Optional[str] = None,
               npy: Optional[str] = None) -> list:
    from ..plots import save_image_grid

    if n < 1:
        raise VaekitError(f"--n must be at least 1, got {n}")
    model = load(path)
    if label is not None and not model.num_classes:
        raise VaekitError("--label needs a conditional VAE (train with --model cvae)")
    require_suffix(png, ".png", "--out")
    require_suffix(npy, ".npy", "--npy")
    torch.manual_seed(seed)
    x = model.info.denormalize(model.sample(n, label))
    written = []
    if png is None and npy is None:
        png = str(Path(path) / rundir.PLOTS / "samples.png") if model.info.kind == "image" else None
        npy = None if png else str(Path(path) / "samples.npy")
    if png:
        if model.info.kind != "image":
            raise VaekitError("a PNG grid needs image data; write the samples with --npy instead")
        written.append(save_image_grid(x, png, nrow=int(np.ceil(np.sqrt(n)))))
    if npy:
        written.append(_save_npy(Path(npy), x.numpy()))
    return written


def reconstruct_run(path, source: Optional[str] = None, split: str = "test", n: int = 16,
                    png: Optional[str] = None, npy: Optional[str] = None) -> list:
    """A PNG of originals above reconstructions (images), and/or reconstructions as .npy (original units).

    With ``npy`` the reconstructions of the first ``n`` examples go to that file and the
    originals to ``<stem>_original.npy``, both denormalized for tables.
    """
    from ..plots import plot_reconstructions

    if n < 1:
        raise VaekitError(f"--n must be at least 1, got {n}")
    require_suffix(png, ".png", "--out")
    require_suffix(npy, ".npy", "--npy")
    model = load(path)
    data = run_data(model, source, split)
    written = []
    if png is None and npy is None:
        if model.info.kind != "image":
            raise VaekitError("reconstructions of a table cannot be drawn; write them with --npy out.npy")
        png = str(Path(path) / rundir.PLOTS / "reconstructions.png")
    if png:
        written.append(plot_reconstructions(model, data, png, n=n))
    if npy:
        x = data.x[:n]
        y = None if data.y is None else data.y[:n]
        x_hat = model.reconstruct(x, y)
        npy = Path(npy)
        written.append(_save_npy(npy, model.info.denormalize(x_hat).numpy()))
        written.append(_save_npy(npy.with_name(npy.stem + "_original.npy"), model.info.denormalize(x).numpy()))
    return written


def require_suffix(path, suffix: str, option: str) -> None:
    """PNG plots must be named .png and arrays .npy, so a file's name says what it holds."""
    if path is not None and Path(path).suffix.lower() != suffix:
        raise VaekitError(f"{option} {path} must end in {suffix} (it is written as {suffix[1:].upper()})")


def _save_npy(path: Path, array: np.ndarray) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)
    return rundir.atomic_write(path, write)


def _fmt(v) -> str:
    return repr(float(v)) if not float(v).is_integer() else str(int(v))
