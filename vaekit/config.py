"""Dataclass configs, saved as a run's config.json and read back to rebuild it.

Every part of a model is a :class:`Part`: ``{"name": <registry key>, "args": {...}}``,
the args being the constructor's keywords. Format 2 (this one) replaced format 1's flat
``network`` / ``network_args`` pairs; :func:`upgrade` reads format-1 runs.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .errors import VaekitError

FORMAT_VERSION = 4


@dataclass
class Part:
    """A registered part: its registry name and its constructor's keyword arguments."""

    name: str
    args: Dict[str, Any] = field(default_factory=dict)


def _part(name: str, **args) -> Any:
    return field(default_factory=lambda: Part(name, copy.deepcopy(args)))


@dataclass
class ModelConfig:
    """Which registered parts make up the model, and their sizes."""

    variant: str = "vae"                        # VARIANTS name: the zoo entry this model came from
    structure: Part = _part("vae")              # MODELS: how the parts are wired
    network: Part = _part("mlp", hidden=[512])  # NETWORKS: encoder/decoder family
    posterior: Part = _part("gaussian")         # POSTERIORS
    prior: Part = _part("normal")               # PRIORS
    likelihood: Part = _part("auto")            # LIKELIHOODS; auto: bernoulli for images, gaussian for tables
    discriminator: Part = _part("none")         # DISCRIMINATORS: an image discriminator and its loss term, or none
    latent_dim: int = 16                        # the `mlp` recipe keeps the classic 2-D latent
    conditional: bool = False                   # CVAE: feed the one-hot label to encoder and decoder
    num_classes: Optional[int] = None           # filled in from the data
    covariates: Optional[Dict[str, int]] = None  # {name: categories} fed one-hot beside the label; from the data
    data_shape: Optional[list] = None           # filled in from the data, e.g. [1, 28, 28]


@dataclass
class TrainConfig:
    objective: Part = _part("elbo")             # OBJECTIVES
    optimizer: Part = _part("adam")             # OPTIMIZERS, for every parameter group ...
    group_optimizers: Dict[str, Part] = field(default_factory=dict)  # ... unless a group has its own
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 50
    seed: int = 0
    warmup_epochs: int = 0                      # KL weight rises linearly 0 -> 1 over these epochs
    grad_clip: Optional[float] = None           # max gradient norm, per parameter group
    patience: Optional[int] = None              # early stopping on the objective's monitored metric
    val_metrics: List[Part] = field(default_factory=list)  # METRICS also computed on validation each epoch
    device: str = "auto"
    precision: str = "fp32"                     # fp32, or bf16: the networks under bf16 autocast
    compile: bool = False                       # torch.compile the encoder and decoder networks
    checkpoint_activations: bool = False        # recompute the networks' blocks in backward: less memory
    checkpoint_every: Optional[int] = None      # also save state.pt every this many optimizer steps
    nan_retries: int = 3                        # roll back after a non-finite loss at most this often ...
    nan_lr_factor: float = 0.5                  # ... each time multiplying the learning rates by this
    ema: Optional[float] = None                 # decay of an average of the weights (train/ema.py); None: off
    ema_discriminator: bool = False             # also average a discriminator group's weights
    perceptual: float = 0.0                     # weight of an LPIPS term added to the main loss (images)


@dataclass
class DataConfig:
    source: str = "digits"
    data_dir: Optional[str] = None
    label_column: Optional[str] = None
    val_fraction: float = 0.1
    stream: Optional[bool] = None  # read .npy data batch by batch from disk; None: when it is large
    image_size: Optional[Any] = None  # image folders: [H, W] to resize and centre-crop to (or "HxW", S)
    channels: Optional[int] = None    # image folders: 1 or 3, the channels every image is converted to
    augment: Optional[Any] = None     # ["flip", "crop"]: augmentation of the training split's batches
    skip_bad_images: bool = False     # leave out unreadable image files (listed) instead of refusing
    workers: Optional[int] = None     # processes decoding a streamed image folder; None: up to 4
    layer: Optional[str] = None       # .h5ad: the layer read instead of X
    image_column: Optional[str] = None  # Hugging Face datasets: the image column (None: the one Image column)
    covariates: List[str] = field(default_factory=list)  # categorical covariates (batch, donor): columns/arrays
    counts: Optional[bool] = None     # count data, kept raw; None: when the likelihood is a count likelihood


@dataclass
class LogConfig:
    """Experiment trackers the run logs to (vaekit/track/): rows, events, images and evaluations."""

    trackers: List[str] = field(default_factory=list)  # tensorboard, mlflow, wandb
    images_every: int = 1                              # samples and reconstructions every N epochs; 0: never
    tensorboard: Dict[str, Any] = field(default_factory=lambda: {"dir": None})  # None: RUN/tensorboard
    mlflow: Dict[str, Any] = field(default_factory=lambda: {"uri": None, "experiment": "vaekit"})  # None: RUN/mlruns
    wandb: Dict[str, Any] = field(default_factory=lambda: {"project": "vaekit", "entity": None, "mode": "offline",
                                                           "dir": None})  # dir None: the run directory


@dataclass
class LPIPSConfig:
    """The LPIPS network's files (nn/lpips_weights.py): torchvision's backbone, the lpips package's lin weights
    (default: the installed package's), for --perceptual and the lpips metric."""

    net: str = "vgg"                  # vgg or alex
    backbone: Optional[str] = None    # torchvision's vgg16-397923af.pth or alexnet-owt-7be5be79.pth
    lin: Optional[str] = None         # weights/v0.1/{net}.pth of the lpips package


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    log: LogConfig = field(default_factory=LogConfig)
    lpips: LPIPSConfig = field(default_factory=LPIPSConfig)
    recipe: Optional[str] = None
    data_info: Optional[Dict[str, Any]] = None  # DataInfo.to_dict() of the training data
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "RunConfig":
        if not isinstance(d, dict):
            raise VaekitError(f"{where} is not a vaekit config (not a JSON object)")
        d = upgrade(d, where)
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise VaekitError(f"{where} has unknown keys {unknown}")
        return cls(model=_build(ModelConfig, d.get("model", {}), f"{where}: model"),
                   train=_build(TrainConfig, d.get("train", {}), f"{where}: train"),
                   data=_build(DataConfig, d.get("data", {}), f"{where}: data"),
                   log=_build(LogConfig, d.get("log", {}), f"{where}: log"),
                   lpips=_build(LPIPSConfig, d.get("lpips", {}), f"{where}: lpips"),
                   recipe=d.get("recipe"), data_info=d.get("data_info"), format_version=FORMAT_VERSION)


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise VaekitError(f"{where} must be a JSON object, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise VaekitError(f"{where} has unknown keys {unknown}; known keys: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        _check_scalar(fields[name].type, value, f"{where}.{name}")
        if fields[name].type == "Part":
            value = _as_part(value, f"{where}.{name}")
        elif name == "group_optimizers":
            if not isinstance(value, dict):
                raise VaekitError(f"{where}.{name} must map parameter-group names to optimizers")
            value = {k: _as_part(v, f"{where}.{name}.{k}") for k, v in value.items()}
        elif name == "val_metrics":
            if not isinstance(value, list):
                raise VaekitError(f"{where}.{name} must be a list of metrics, like [\"nll\"] or "
                                  f"[{{\"name\": \"nll\", \"args\": {{\"k\": 100}}}}]")
            value = [_as_part(v, f"{where}.{name}[{i}]") for i, v in enumerate(value)]
        kwargs[name] = value
    return cls(**kwargs)


_SCALARS = {"int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
            "float": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
            "bool": ("true or false", lambda v: isinstance(v, bool))}


def _check_scalar(annotation: str, value, where: str) -> None:
    """A VaekitError for a number or flag of the wrong type (a hand-edited or damaged config.json),
    instead of a TypeError deep inside model building or training."""
    optional = annotation.startswith("Optional[")
    kind = annotation[len("Optional["):-1] if optional else annotation
    if kind not in _SCALARS or (optional and value is None):
        return
    what, ok = _SCALARS[kind]
    if not ok(value):
        raise VaekitError(f"{where} must be {what}{' or null' if optional else ''}, got {value!r}")


def _as_part(value, where: str) -> Part:
    if isinstance(value, Part):
        return value
    if isinstance(value, str):
        return Part(value)
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or set(value) - {"name", "args"}:
        raise VaekitError(f"{where} must be {{\"name\": ..., \"args\": {{...}}}}, got {value!r}")
    args = value.get("args") or {}
    if not isinstance(args, dict):
        raise VaekitError(f"{where}.args must be a JSON object of option names to values, got {args!r}")
    return Part(value["name"], dict(args))


def upgrade(d: dict, where: str) -> dict:
    """A config dict of any known format version, in the current format."""
    version = d.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise VaekitError(f"{where} has format version {version!r}, but this vaekit reads versions 1 to "
                          f"{FORMAT_VERSION}; upgrade vaekit (pip install -U vaekit) to read it")
    d = {k: v for k, v in d.items() if k != "format_version"}
    if version == 1:
        d = _from_v1(d)
    if version <= 2:
        d = _from_v2(d)
    if version <= 3:
        d = _from_v3(d)
    return d


def _from_v3(d: dict) -> dict:
    """Formats 1-3 named the conv network's filters ``channels``; they are its ``widths`` now, the name
    the resnet network uses too (``--widths``), while ``--channels`` converts images' colour mode."""
    d = copy.deepcopy(d)
    net = d.get("model", {}).get("network")
    if isinstance(net, dict) and net.get("name") == "conv" and isinstance(net.get("args"), dict) \
            and "channels" in net["args"]:
        net["args"]["widths"] = net["args"].pop("channels")
    return d


def _from_v2(d: dict) -> dict:
    """Formats 1-2 meant gaussian sigma = 1 by default and one learned sigma per value; pin both."""
    d = copy.deepcopy(d)
    lik = d.get("model", {}).get("likelihood")
    if not isinstance(lik, dict):
        return d
    kind = (d.get("data_info") or {}).get("kind")
    gaussian = lik.get("name") == "gaussian" or (lik.get("name") == "auto" and kind == "table")
    args = dict(lik.get("args") or {})
    if gaussian and "sigma" not in args:
        args["sigma"] = "1.0"
    elif gaussian and str(args["sigma"]) == "learned":
        args["sigma"] = "learned-per-value"
    lik["args"] = args
    return d


def _from_v1(d: dict) -> dict:
    """Format 1 (vaekit 0.1): flat names with ``*_args`` dicts, ``network`` under ``model``."""
    d = copy.deepcopy(d)
    m, t = dict(d.get("model", {})), dict(d.get("train", {}))
    for key in ("network", "likelihood"):
        if key in m:
            m[key] = {"name": m[key], "args": m.pop(f"{key}_args", {})}
    for key in ("posterior", "prior"):
        if key in m:
            m[key] = {"name": m[key], "args": {}}
    if "objective" in t:
        t["objective"] = {"name": t["objective"], "args": t.pop("objective_args", {})}
    if "optimizer" in t:
        t["optimizer"] = {"name": t["optimizer"], "args": {}}
    d["model"], d["train"] = m, t
    return d
