"""The one option table: CLI flags, ``vaekit.train`` keywords and recipes all go through it.

Each :class:`Option` names the config path it sets (``model.network.args.hidden``); the
CLI's ``train`` command is generated from :data:`OPTIONS`, and ``vaekit.train(**options)``
accepts exactly their names. ``--set PATH=VALUE`` (``sets=[...]`` in Python) reaches any
argument of any part, so a new part needs no new option.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional

from ..config import RunConfig
from ..errors import VaekitError
from ..image_options import parse_augment, parse_channels, parse_image_size
from ..recipes import load_recipe
from ..track import parse_trackers
from ..registry import (DISCRIMINATORS, LIKELIHOODS, NETWORKS, OBJECTIVES, OPTIMIZERS, POSTERIORS, PRIORS, VARIANTS,
                        Registry)


def parse_sizes(value, option: str = "--hidden") -> list:
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


def parse_names(value, option: str) -> list:
    """Names from "batch,donor" or ["batch", "donor"]; none from "" or []."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(v, str) for v in items):
        raise VaekitError(f"{option} takes comma-separated names like batch,donor; got {value!r}")
    return [v.strip() for v in items if v.strip()]


LISTED = 8  # --help lists the choices of an option that has at most this many


@dataclass(frozen=True)
class Option:
    name: str                     # keyword of vaekit.train; the CLI flag is --name-with-dashes
    path: str                     # where it goes in the config: "model.latent_dim"
    type: type                    # str, int, float or bool (a --flag/--no-flag pair)
    help: str
    parse: Optional[Callable[[Any, str], Any]] = None
    choices: Optional[Registry] = None  # the registry whose names it takes; listed in --help

    @property
    def description(self) -> str:
        """The help text, with the registered names where the option takes one."""
        if not self.choices:
            return self.help
        names = self.choices.names()
        if len(names) > LISTED:  # a long list drowns --help at 80 columns
            return f"{self.help} {len(names)} choices: `vaekit models --parts` lists them."
        return f"{self.help} One of: {', '.join(names)}."

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: List[Option] = [
    Option("model", "model.variant", str, "Model from the zoo (see `vaekit models`).", choices=VARIANTS),
    Option("network", "model.network.name", str, "Encoder/decoder family.", choices=NETWORKS),
    Option("latent_dim", "model.latent_dim", int, "Latent dimensions (default 16; each recipe sets its own, "
           "e.g. 2 for mlp and conv)."),
    Option("hidden", "model.network.args.hidden", str, "MLP hidden sizes, e.g. 512,256.", parse_sizes),
    Option("dense", "model.network.args.dense", int, "Conv and resnet (vector latent) dense layer width."),
    Option("widths", "model.network.args.widths", str, "Widths per level: conv filters per stride-2 layer (e.g. "
           "32,64) or resnet channels per resolution level (e.g. 64,128,256).", parse_sizes),
    Option("blocks", "model.network.args.blocks", int, "ResNet residual blocks per level."),
    Option("attention", "model.network.args.attention", bool, "ResNet: self-attention at the lowest resolution."),
    Option("latent_channels", "model.network.args.latent_channels", int, "ResNet: a spatial latent map with this "
           "many channels (B, C_z, H/f, W/f) instead of a vector latent."),
    Option("norm_groups", "model.network.args.norm_groups", int, "ResNet: GroupNorm groups, at most this many "
           "per norm (the most up to it that divide the width; diffusers' norm_num_groups, default 32). A group of "
           "one channel (32 on a width of 32) is instance norm: it hides each image's colour from the decoder; "
           "the resnet recipe uses 8."),
    Option("downsample", "model.network.args.downsample", int, "ResNet: the down-sampling factor f, checked "
           "against the number of --widths (f = 2 ** (levels - 1))."),
    Option("activation", "model.network.args.activation", str, "Network activation: relu, elu, tanh, gelu, silu."),
    Option("posterior", "model.posterior.name", str, "Posterior q(z|x).", choices=POSTERIORS),
    Option("prior", "model.prior.name", str, "Prior p(z).", choices=PRIORS),
    Option("likelihood", "model.likelihood.name", str, "p(x|z): bernoulli is cross-entropy, gaussian squared "
           "error.", choices=LIKELIHOODS),
    Option("sigma", "model.likelihood.args.sigma", str, "Gaussian sigma: optimal (default: the batch's "
           "RMS error), learned (one shared), learned-per-value, or a fixed number."),
    Option("library", "model.likelihood.args.library", str, "Count likelihoods (poisson, nb, zinb): the library "
           "size scaling the decoded proportions: observed (default, each example's total count, as scvi-tools) "
           "or latent (scVI's learned log-normal latent, its prior from the training data's log totals per "
           "category of the first --covariate)."),
    Option("discriminator", "model.discriminator.name", str, "An image discriminator whose adversarial term "
           "(adaptive weight, Esser et al. 2021) joins the loss, on an optimizer of its own; none (default) or its "
           "name.", choices=DISCRIMINATORS),
    Option("disc_start", "model.discriminator.args.disc_start", int, "The optimizer step at which the "
           "discriminator and its term start (before it, neither is trained)."),
    Option("disc_weight", "model.discriminator.args.disc_weight", float, "Weight of the discriminator's term, "
           "on top of its adaptive weight."),
    Option("conditional", "model.conditional", bool, "Feed the class label to encoder and decoder (CVAE)."),
    Option("objective", "train.objective.name", str, "What is minimised.", choices=OBJECTIVES),
    Option("beta", "train.objective.args.beta", float, "KL weight of the elbo objective (beta-VAE when > 1)."),
    Option("free_bits", "train.objective.args.free_bits", float, "Minimum KL per latent dim, nats."),
    Option("perceptual", "train.perceptual", float, "Images: add W x LPIPS(x, reconstruction) to the loss (Zhang et "
           "al. 2018); needs torchvision's VGG16 weights file, --set lpips.backbone=PATH, and the lpips package's lin "
           "weights (installed, or --set lpips.lin=PATH)."),
    Option("warmup", "train.warmup_epochs", int, "KL warm-up: linear over this many epochs."),
    Option("optimizer", "train.optimizer.name", str, "Optimizer of every parameter group.", choices=OPTIMIZERS),
    Option("lr", "train.lr", float, "Learning rate."),
    Option("batch_size", "train.batch_size", int, "Examples per step."),
    Option("epochs", "train.epochs", int, "Training epochs."),
    Option("seed", "train.seed", int, "Random seed (same seed, same machine: same numbers)."),
    Option("grad_clip", "train.grad_clip", float, "Clip each parameter group's gradient norm to this."),
    Option("patience", "train.patience", int, "Early stopping: epochs without validation gain."),
    Option("device", "train.device", str, "auto, cpu or cuda."),
    Option("precision", "train.precision", str, "fp32, or bf16: the encoder and decoder networks under bf16 "
           "autocast (GPUs, and CPUs with BF16 instructions); the loss maths stays fp32."),
    Option("compile", "train.compile", bool, "torch.compile the encoder and decoder networks (compiling takes "
           "a while on the first step; needs a C++ compiler on the CPU)."),
    Option("checkpoint_activations", "train.checkpoint_activations", bool, "ResNet: keep only each block's input "
           "for backward and recompute the block there (activation checkpointing): far less memory for about "
           "one more forward pass per step; the same gradients."),
    Option("checkpoint_every", "train.checkpoint_every", int, "Also save a resumable checkpoint every N optimizer "
           "steps (default: at the end of each epoch only)."),
    Option("nan_retries", "train.nan_retries", int, "After a nan or inf loss, go back to the last checkpoint with "
           "the learning rate halved (train.nan_lr_factor), at most this many times; 0 stops at once. Default 3."),
    Option("ema", "train.ema", float, "Keep an exponential moving average of the weights with this decay (e.g. "
           "0.999), saved as model.safetensors and used by evaluate, sample and plot (--checkpoint raw: the "
           "weights as trained)."),
    Option("ema_discriminator", "train.ema_discriminator", bool, "With --ema, also average a discriminator's "
           "weights."),
    Option("data", "data.source", str, "Dataset name (digits, mnist, fashion-mnist, shapes[-N]) or path "
           "(.npy/.npz, image folder, .csv). Default: digits."),
    Option("data_dir", "data.data_dir", str, "Where mnist/fashion-mnist IDX files are."),
    Option("label_column", "data.label_column", str, "Table column (CSV, Parquet, Feather, Hugging Face dataset) "
           "or .h5ad obs column holding class labels."),
    Option("layer", "data.layer", str, "AnnData .h5ad: the layer to read instead of X, e.g. counts."),
    Option("image_column", "data.image_column", str, "Hugging Face datasets: the image column (default: the one "
           "Image column)."),
    Option("val_fraction", "data.val_fraction", float, "Share of training data for validation (default 0.1)."),
    Option("covariate", "data.covariates", str, "Categorical covariates (a batch, a donor; several with commas) "
           "fed one-hot to encoder and decoder: CSV columns, .h5ad obs columns, .npz arrays, or x.NAME.npy beside "
           "x.npy.",
           lambda v, flag: parse_names(v, flag)),
    Option("counts", "data.counts", bool, "Count data: whole numbers kept raw, not standardized (default: with a "
           "count likelihood, poisson, nb or zinb)."),
    Option("stream", "data.stream", bool, "Read a .npy file or folder of .npy shards batch by batch from disk, in "
           "bounded memory (default: when its float32 copy would exceed a quarter of RAM or 2 GiB); a folder of "
           "images streams the same way, decoded in worker processes."),
    Option("image_size", "data.image_size", str, "Image folders: resize the shorter side and centre-crop to S "
           "(square) or HxW, e.g. 64 or 48x64; saved in the run, so new images get the same transform.",
           lambda v, flag: list(parse_image_size(v, flag))),
    Option("channels", "data.channels", int, "Image folders: convert every image to 1 (grey) or 3 (RGB) channels.",
           parse_channels),
    Option("augment", "data.augment", str, "Augment the training split: flip, crop, or flip,crop (random "
           "left-right flips; random shifts of up to 1/8 of the side, reflected borders).", parse_augment),
    Option("skip_bad_images", "data.skip_bad_images", bool, "Leave out image files that cannot be read (empty, "
           "truncated, not an image, 1 pixel wide) and list them, instead of stopping with the first."),
    Option("workers", "data.workers", int, "Processes decoding a streamed image folder (default: up to 4, one "
           "per CPU)."),
    Option("log", "log.trackers", str, "Experiment trackers to log to: tensorboard, mlflow, wandb (several with "
           "commas) or none; their settings are --set log.mlflow.uri=..., log.wandb.mode=online, "
           "log.images_every=N.", parse_trackers),
]
BY_NAME: Dict[str, Option] = {o.name: o for o in OPTIONS}
# what may change when a run continues
# (streamed and in-memory data give the same numbers; recomputed activations the same gradients)
RESUME_OPTIONS = ("epochs", "patience", "device", "precision", "compile", "checkpoint_activations",
                  "checkpoint_every", "nan_retries", "log", "stream", "workers")


# -- applying values to a config dict ------------------------------------------------------
def set_path(d: dict, path: str, value, where: str) -> None:
    """``d[a][b][c] = value`` for path "a.b.c". Setting a part's ``name`` to another value
    drops the old part's ``args`` (they belonged to the old choice)."""
    keys = path.split(".")
    node = d
    for i, key in enumerate(keys[:-1]):
        if not isinstance(node, dict) or key not in node and not _may_add(keys[: i + 1]):
            raise VaekitError(f"{where}: the config has no {'.'.join(keys[: i + 1])!r}; "
                              f"see a run's config.json for the paths")
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise VaekitError(f"{where}: {'.'.join(keys[: i + 1])} is a value, not a section")
    last = keys[-1]
    if last == "name" and "args" in node and node.get("name") != value:
        node["args"] = {}
    if last not in node and not _may_add(keys):
        raise VaekitError(f"{where}: the config has no {path!r}; see a run's config.json for the paths")
    node[last] = value


def _may_add(keys: List[str]) -> bool:
    """New keys may be added under a part's args and under train.group_optimizers."""
    return "args" in keys[:-1] or keys[-1] == "args" or keys[:2] == ["train", "group_optimizers"]


def merge(d: dict, partial: dict) -> None:
    """Apply a partial config (a recipe, a variant) onto ``d``; a part given with a new name
    replaces the old part whole. Unknown keys are reported when the config is built."""
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(d.get(key), dict):
            if "name" in value and "name" in d[key] and value["name"] != d[key]["name"]:
                d[key] = {"name": value["name"], "args": {}}
            merge(d[key], value)
        else:
            d[key] = copy.deepcopy(value)


def composition() -> Dict[str, set]:
    """What a variant composes: every key some variant of the zoo sets (``model.prior``, ``model.likelihood``,
    ``model.latent_dim``, ``train.warmup_epochs``, ...). Choosing a variant resets them all to the defaults
    before applying its config, so no value outlives the variant that set it."""
    keys: Dict[str, set] = {}
    for name in VARIANTS.names():
        for section, values in VARIANTS.get(name).config.items():
            keys.setdefault(section, set()).update(values)
    return keys


def apply_variant(d: dict, name: str) -> None:
    variant = VARIANTS.get(name)
    defaults = RunConfig().to_dict()
    for section, keys in composition().items():
        for key in keys:
            d[section][key] = copy.deepcopy(defaults[section][key])
    merge(d, variant.config)
    d["model"]["variant"] = name


def parse_set(item: str) -> tuple:
    """``"model.prior.args.components=500"`` -> (path, 500); the value is JSON when it parses."""
    if not isinstance(item, str) or "=" not in item:
        raise VaekitError(f"--set takes PATH=VALUE, like model.prior.args.components=500; got {item!r}")
    path, raw = item.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return path.strip(), value


# -- options -> config ----------------------------------------------------------------------
def base_config(recipe: Optional[str] = None) -> RunConfig:
    """The defaults, or a recipe: its variant's composition plus the recipe's own settings."""
    d = RunConfig().to_dict()
    if recipe:
        r = load_recipe(recipe)
        variant = r.get("model", {}).get("variant")
        if variant:
            apply_variant(d, variant)
        merge(d, {k: r[k] for k in ("model", "train") if k in r})
        d["recipe"] = recipe
    return RunConfig.from_dict(d, where=f"recipe {recipe!r}" if recipe else "the defaults")


def apply_options(cfg: RunConfig, options: Dict[str, Any], sets: Iterable[str] = ()) -> RunConfig:
    """A copy of ``cfg`` with every option that is not None applied, then every ``--set``.

    ``--model`` first (it chooses the composition), then whole parts (``--network``,
    ``--likelihood``, which reset their args), then the rest.
    """
    if isinstance(sets, str):
        sets = [sets]
    unknown = sorted(set(options) - set(BY_NAME))
    if unknown:
        raise VaekitError(f"unknown option(s) {unknown}; known options: {', '.join(sorted(BY_NAME))}")
    d = cfg.to_dict()
    given = {k: v for k, v in options.items() if v is not None}
    if "model" in given and given["model"] != d["model"]["variant"]:
        apply_variant(d, given["model"])
    rest = sorted((k for k in given if k != "model"), key=lambda k: not BY_NAME[k].path.endswith(".name"))
    for name in rest:
        option, value = BY_NAME[name], given[name]
        if option.parse:
            value = option.parse(value, option.flag)
        set_path(d, option.path, value, option.flag)
    for item in sets:
        path, value = parse_set(item)
        set_path(d, path, value, f"--set {item}")
    cfg = RunConfig.from_dict(d, where="config")
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    t, d, m = cfg.train, cfg.data, cfg.model
    checks = [
        (isinstance(t.epochs, int) and t.epochs >= 1, f"--epochs must be at least 1, got {t.epochs}"),
        (isinstance(t.batch_size, int) and t.batch_size >= 1, f"--batch-size must be at least 1, got {t.batch_size}"),
        (isinstance(t.lr, (int, float)) and t.lr > 0, f"--lr must be positive, got {t.lr}"),
        (isinstance(t.warmup_epochs, int) and t.warmup_epochs >= 0,
         f"--warmup must be 0 or more epochs, got {t.warmup_epochs}"),
        (t.grad_clip is None or t.grad_clip > 0, f"--grad-clip must be positive, got {t.grad_clip}"),
        (t.patience is None or t.patience >= 1, f"--patience must be at least 1, got {t.patience}"),
        (t.checkpoint_every is None or isinstance(t.checkpoint_every, int) and t.checkpoint_every >= 1,
         f"--checkpoint-every must be at least 1 step, got {t.checkpoint_every}"),
        (isinstance(t.nan_retries, int) and t.nan_retries >= 0, f"--nan-retries must be 0 or more, got {t.nan_retries}"),
        (isinstance(t.nan_lr_factor, (int, float)) and 0 < t.nan_lr_factor < 1,
         f"train.nan_lr_factor must be between 0 and 1, got {t.nan_lr_factor}"),
        (t.ema is None or isinstance(t.ema, (int, float)) and 0 < t.ema < 1,
         f"--ema takes a decay between 0 and 1 (e.g. 0.999), got {t.ema}"),
        (isinstance(d.val_fraction, (int, float)) and 0 <= d.val_fraction < 1,
         f"--val-fraction must be in [0, 1), got {d.val_fraction}"),
        (isinstance(m.latent_dim, int) and m.latent_dim >= 1, f"--latent-dim must be at least 1, got {m.latent_dim}"),
        (_number(t.objective.args.get("beta", 1.0)) >= 0, "--beta must be 0 or more"),
        (_number(t.objective.args.get("free_bits", 0.0)) >= 0, "--free-bits must be 0 or more"),
        (_number(t.perceptual) >= 0, f"--perceptual must be 0 or more, got {t.perceptual}"),
    ]
    for ok, message in checks:
        if not ok:
            raise VaekitError(message)
    parse_image_size(d.image_size, "data.image_size")  # a --set value: the same checks as the flags
    parse_channels(d.channels, "data.channels")
    parse_augment(d.augment, "data.augment")
    if d.workers is not None and not (isinstance(d.workers, int) and d.workers >= 0):
        raise VaekitError(f"--workers must be 0 or more, got {d.workers}")
    VARIANTS.get(m.variant)  # an unknown --model (or model.variant) names the zoo
    if "sigma" in m.likelihood.args and m.likelihood.name not in ("gaussian", "auto"):
        raise VaekitError(f"--sigma applies to the gaussian likelihood, not {m.likelihood.name!r}; "
                          "add --likelihood gaussian or drop --sigma")
    if "library" in m.likelihood.args and m.likelihood.name not in ("poisson", "nb", "zinb", "auto"):
        raise VaekitError(f"--library applies to the count likelihoods (poisson, nb, zinb), not "
                          f"{m.likelihood.name!r}; add --likelihood zinb or drop --library")
    if t.patience is not None and d.val_fraction == 0:
        raise VaekitError("--patience needs a validation split; set --val-fraction above 0")


def image_options(cfg: RunConfig) -> Dict[str, Any]:
    """``load_data``'s keywords for image folders and augmentation, from ``cfg.data``."""
    d = cfg.data
    return dict(image_size=d.image_size, channels=d.channels, augment=d.augment, skip_bad_images=d.skip_bad_images,
                workers=d.workers, layer=d.layer, image_column=d.image_column)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return -1.0
