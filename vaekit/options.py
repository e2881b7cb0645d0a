"""Flat user options (CLI flags, ``vaekit.train`` keywords) -> a RunConfig.

Each option names the config field it sets, so the CLI, the Python API and recipes share
one mapping and a new option is one line here.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional

from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
from .errors import VaekitError
from .recipes import load_recipe

# option name -> (section, field, sub-key or None)
OPTIONS = {
    "model": ("model", "network", None),
    "latent_dim": ("model", "latent_dim", None),
    "hidden": ("model", "network_args", "hidden"),
    "channels": ("model", "network_args", "channels"),
    "dense": ("model", "network_args", "dense"),
    "activation": ("model", "network_args", "activation"),
    "posterior": ("model", "posterior", None),
    "prior": ("model", "prior", None),
    "likelihood": ("model", "likelihood", None),
    "sigma": ("model", "likelihood_args", "sigma"),
    "conditional": ("model", "conditional", None),
    "objective": ("train", "objective", None),
    "beta": ("train", "objective_args", "beta"),
    "free_bits": ("train", "objective_args", "free_bits"),
    "optimizer": ("train", "optimizer", None),
    "lr": ("train", "lr", None),
    "batch_size": ("train", "batch_size", None),
    "epochs": ("train", "epochs", None),
    "seed": ("train", "seed", None),
    "warmup": ("train", "warmup_epochs", None),
    "grad_clip": ("train", "grad_clip", None),
    "patience": ("train", "patience", None),
    "device": ("train", "device", None),
    "data": ("data", "source", None),
    "data_dir": ("data", "data_dir", None),
    "label_column": ("data", "label_column", None),
    "val_fraction": ("data", "val_fraction", None),
}
# changing one of these drops the options that belonged to the old choice
_RESETS = {("model", "network"): "network_args", ("model", "likelihood"): "likelihood_args"}


def base_config(recipe: Optional[str] = None) -> RunConfig:
    cfg = RunConfig(model=ModelConfig(), train=TrainConfig(), data=DataConfig(), recipe=recipe)
    if recipe:
        r = load_recipe(recipe)
        cfg = RunConfig.from_dict({"model": r.get("model", {}), "train": r.get("train", {}), "recipe": recipe},
                                  where=f"recipe {recipe!r}")
    return cfg


def apply_options(cfg: RunConfig, options: Dict[str, Any]) -> RunConfig:
    """Return a copy of ``cfg`` with every option that is not None applied."""
    cfg = copy.deepcopy(cfg)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise VaekitError(f"unknown option(s) {unknown}; known options: {', '.join(sorted(OPTIONS))}")
    # whole-field options (--model, --likelihood) first: they may reset the sub-options
    ordered = sorted(options.items(), key=lambda item: OPTIONS.get(item[0], (0, 0, None))[2] is not None)
    for name, value in ordered:
        if value is None:
            continue
        if name in ("hidden", "channels"):
            value = parse_sizes(value, f"--{name}")
        section, field, key = OPTIONS[name]
        target = getattr(cfg, section)
        if key is None:
            reset = _RESETS.get((section, field))
            if reset and getattr(target, field) != value:
                setattr(target, reset, {})
            setattr(target, field, value)
        else:
            getattr(target, field)[key] = value
    _validate(cfg)
    return cfg


def parse_sizes(value, option: str) -> list:
    """Layer sizes from "512,256", [512, 256] or 512 -> [512, 256]."""
    items = value.replace(" ", "").split(",") if isinstance(value, str) else (
        value if isinstance(value, (list, tuple)) else [value])
    try:
        sizes = [int(v) for v in items if v != ""]
    except (TypeError, ValueError):
        sizes = []
    if not sizes or min(sizes) < 1:
        raise VaekitError(f"{option} takes positive comma-separated integers like 512,256; got {value!r}")
    return sizes


def _validate(cfg: RunConfig) -> None:
    t, d = cfg.train, cfg.data
    checks = [
        (t.epochs >= 1, f"--epochs must be at least 1, got {t.epochs}"),
        (t.batch_size >= 1, f"--batch-size must be at least 1, got {t.batch_size}"),
        (t.lr > 0, f"--lr must be positive, got {t.lr}"),
        (t.warmup_epochs >= 0, f"--warmup must be 0 or more epochs, got {t.warmup_epochs}"),
        (t.grad_clip is None or t.grad_clip > 0, f"--grad-clip must be positive, got {t.grad_clip}"),
        (t.patience is None or t.patience >= 1, f"--patience must be at least 1, got {t.patience}"),
        (0 <= d.val_fraction < 1, f"--val-fraction must be in [0, 1), got {d.val_fraction}"),
        (cfg.model.latent_dim >= 1, f"--latent-dim must be at least 1, got {cfg.model.latent_dim}"),
        (float(t.objective_args.get("beta", 1.0)) >= 0, "--beta must be 0 or more"),
        (float(t.objective_args.get("free_bits", 0.0)) >= 0, "--free-bits must be 0 or more"),
    ]
    for ok, message in checks:
        if not ok:
            raise VaekitError(message)
    m = cfg.model
    if "sigma" in m.likelihood_args and m.likelihood not in ("gaussian", "auto"):
        raise VaekitError(f"--sigma applies to the gaussian likelihood, not {m.likelihood!r}; "
                          "add --likelihood gaussian or drop --sigma")
    if t.patience is not None and d.val_fraction == 0:
        raise VaekitError("--patience needs a validation split; set --val-fraction above 0")
