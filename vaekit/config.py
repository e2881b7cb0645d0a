"""Dataclass configs, saved as a run's config.json and read back to rebuild it."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .errors import VaekitError

FORMAT_VERSION = 1


@dataclass
class ModelConfig:
    """Which registered parts make up the model, and their sizes."""

    network: str = "mlp"                     # NETWORKS name: encoder/decoder pair
    network_args: Dict[str, Any] = field(default_factory=lambda: {"hidden": [512]})
    latent_dim: int = 2
    posterior: str = "gaussian"              # POSTERIORS name
    prior: str = "normal"                    # PRIORS name
    likelihood: str = "auto"                 # LIKELIHOODS name; auto: bernoulli for images, gaussian for tables
    likelihood_args: Dict[str, Any] = field(default_factory=dict)  # e.g. {"sigma": "learned"}
    conditional: bool = False                # CVAE: feed the one-hot label to encoder and decoder
    num_classes: Optional[int] = None        # filled in from the data
    data_shape: Optional[list] = None        # filled in from the data, e.g. [1, 28, 28]


@dataclass
class TrainConfig:
    objective: str = "elbo"
    objective_args: Dict[str, Any] = field(default_factory=dict)  # e.g. {"beta": 4.0, "free_bits": 0.5}
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 50
    seed: int = 0
    warmup_epochs: int = 0                   # KL weight rises linearly 0 -> 1 over these epochs
    grad_clip: Optional[float] = None        # max gradient norm
    patience: Optional[int] = None           # early stopping on validation loss
    device: str = "auto"


@dataclass
class DataConfig:
    source: str = "digits"
    data_dir: Optional[str] = None
    label_column: Optional[str] = None
    val_fraction: float = 0.1


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    recipe: Optional[str] = None
    data_info: Optional[Dict[str, Any]] = None  # DataInfo.to_dict() of the training data
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "RunConfig":
        try:
            return cls(
                model=_build(ModelConfig, d.get("model", {}), f"{where}: model"),
                train=_build(TrainConfig, d.get("train", {}), f"{where}: train"),
                data=_build(DataConfig, d.get("data", {}), f"{where}: data"),
                recipe=d.get("recipe"),
                data_info=d.get("data_info"),
                format_version=d.get("format_version", FORMAT_VERSION),
            )
        except (TypeError, AttributeError) as e:
            raise VaekitError(f"{where} is not a valid vaekit config ({e}); re-create it with `vaekit train`") from None


def _build(cls, values: dict, where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise VaekitError(f"{where} has unknown keys {unknown}; known keys: {sorted(names)}")
    return cls(**values)

