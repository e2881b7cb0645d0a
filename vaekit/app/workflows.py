"""What the commands do, as plain functions on a run directory (the CLI is a thin layer)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from .. import rundir
from ..data import load_data
from ..data.types import DataSplits, TensorData
from ..errors import VaekitError
from ..models.helpers import posterior_moments
from ..run import Run, as_run, open_run

SPLITS = ("test", "val", "train")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".feather", ".arrow", ".h5ad")  # a new one gets the run's columns


def run_data(run: Run, source: Optional[str] = None, split: str = "test") -> TensorData:
    """A split of the run's own dataset, or of ``source`` normalized like the training data."""
    return run_splits(run, source, split)[0]


def run_splits(run: Run, source: Optional[str] = None, split: str = "test") -> Tuple[TensorData, DataSplits]:
    """``(the chosen split, all splits)`` of the run's own dataset or of ``source``, checked against its model."""
    if split not in SPLITS:
        raise VaekitError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    cfg, model = run.config, run.model
    splits = load_run_data(run, source, cfg.data.val_fraction, cfg.train.seed)
    data = getattr(splits, split)
    if len(data) == 0:
        raise VaekitError(f"the {split} split of {source or cfg.data.source!r} is empty; choose another --split")
    name = f"{split} split of {source or cfg.data.source!r}"
    for x in data.chunks():  # the whole split at once, or ~16 MB at a time when streamed
        model.check_data(x, name)
    if model.num_classes and data.y is None:
        raise VaekitError(f"this is a conditional VAE: the {name} needs labels")
    return data, splits


def load_run_data(run: Run, source: Optional[str], val_fraction: float, seed: int) -> DataSplits:
    """The run's own data or ``source``, normalized like the training data; the run's label column
    applies to its own data and to any CSV like it."""
    cfg = run.config
    if not (source or cfg.data.source):
        raise VaekitError(f"run {run.dir} was imported and has no data of its own; pass --data")
    labelled = source is None or source == cfg.data.source or str(source).lower().endswith(TABLE_SUFFIXES)
    return load_data(source or cfg.data.source, data_dir=cfg.data.data_dir,
                     label_column=cfg.data.label_column if labelled else None, val_fraction=val_fraction,
                     seed=seed, info=run.info, stream=cfg.data.stream if source in (None, cfg.data.source) else None,
                     skip_bad_images=cfg.data.skip_bad_images, workers=cfg.data.workers,
                     layer=cfg.data.layer if labelled and str(source or cfg.data.source).endswith(".h5ad") else None,
                     image_column=cfg.data.image_column if labelled else None)


def encode_run(path, out, source: Optional[str] = None, split: str = "test", variance: bool = False,
               covariate_values: Optional[list] = None) -> list:
    """Write posterior means (and variances) of a dataset to .npy or .csv; returns the paths written.
    A .npy keeps the latent's shape, (N, D) or (N, C, h, w) for a latent map. ``path``: a run directory, or
    its :class:`~vaekit.run.Run` (one trained with your own networks, opened with them).
    ``covariate_values`` (["batch=0"]): every example encoded as of those categories."""
    run = as_run(path)
    model = run.model
    model.require("encode", "vaekit encode")
    data = run_data(run, source, split)
    mu, var = posterior_moments(model, data, variance=variance, covariates=covariate_codes(run, covariate_values))
    mu, var = mu.numpy(), (None if var is None else var.numpy())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        written = [_save_npy(out, mu)]
        if variance:
            written.append(_save_npy(out.with_name(out.stem + "_var.npy"), var))
        return written
    if out.suffix == ".csv":  # one column per latent value: a latent map (N, C, h, w) is flattened, C-major
        mu, var = mu.reshape(len(mu), -1), (None if var is None else var.reshape(len(var), -1))
        d = mu.shape[1]
        cols = [f"mu_{i}" for i in range(d)] + ([f"var_{i}" for i in range(d)] if variance else [])
        table = np.concatenate([mu, var], axis=1) if variance else mu
        if data.y is not None:
            cols.append("label")
            table = np.concatenate([table, data.y.numpy()[:, None]], axis=1)
        text = ",".join(cols) + "\n" + "\n".join(",".join(_fmt(v) for v in row) for row in table) + "\n"
        return [rundir.write_text(out, text)]
    raise VaekitError(f"--out {out} must end in .npy or .csv")


def reconstruct_run(path, source: Optional[str] = None, split: str = "test", n: int = 16,
                    png: Optional[str] = None, npy: Optional[str] = None, checkpoint: str = "last",
                    covariate_values: Optional[list] = None) -> list:
    """A PNG of originals above reconstructions (images), and/or reconstructions as .npy (original units).

    With ``npy`` the reconstructions of the first ``n`` examples go to that file and the
    originals to ``<stem>_original.npy``, both denormalized for tables. ``covariate_values`` (["batch=0"]):
    each example encoded with its own covariates and decoded as of those categories (counterfactuals).
    """
    from ..plots import plot_reconstructions

    if n < 1:
        raise VaekitError(f"--n must be at least 1, got {n}")
    require_suffix(png, ".png", "--out")
    require_suffix(npy, ".npy", "--npy")
    run = open_run(path, checkpoint=checkpoint)
    model, info = run.model, run.info
    data = run_data(run, source, split)
    written = []
    if png is None and npy is None:
        if info.kind != "image":
            raise VaekitError("reconstructions of a table cannot be drawn; write them with --npy out.npy")
        png = str(Path(path) / rundir.PLOTS / "reconstructions.png")
    if png:
        written.append(plot_reconstructions(model, data, png, n=n, info=info))
    if npy:
        x = data.x[:n]
        c = None if data.c is None else data.c[:n]
        codes = covariate_codes(run, covariate_values)
        x_hat = model.reconstruct(x, c, **({"covariates": codes} if codes else {}))  # structures with their own
        npy = Path(npy)
        written.append(_save_npy(npy, info.denormalize(x_hat).numpy()))
        written.append(_save_npy(npy.with_name(npy.stem + "_original.npy"), info.denormalize(x).numpy()))
    return written


def covariate_codes(run: Run, values: Optional[list]) -> Optional[dict]:
    """{"batch": code} from ["batch=NAME", ...], NAME one of the run's categories of that covariate."""
    if not values:
        return None
    known = {c["name"]: c["categories"] for c in (run.info.covariates if run.info else [])}
    codes = {}
    for item in values:
        name, sep, value = str(item).partition("=")
        if not sep or name not in known:
            raise VaekitError(f"--covariate-value {item!r} must be NAME=CATEGORY with NAME one of the run's "
                              f"covariates ({', '.join(known) or 'none: train with --covariate'})")
        if value not in known[name]:
            raise VaekitError(f"--covariate-value {item!r}: covariate '{name}' has the categories "
                              f"{', '.join(known[name][:20])}; pick one of them")
        codes[name] = known[name].index(value)
    return codes


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
