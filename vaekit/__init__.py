"""vaekit: train, evaluate, sample and inspect variational autoencoders."""
from . import distributions as _distributions  # noqa: F401  (registers priors, posteriors, likelihoods)
from . import evaluate as _evaluate  # noqa: F401  (registers metrics)
from . import models as _models  # noqa: F401  (registers model structures)
from . import objectives as _objectives  # noqa: F401  (registers objectives)
from . import plots as _plots  # noqa: F401  (registers plots)
from .app.api import fit_sampler, load, load_sampler, open_run, train
from .config import DataConfig, ModelConfig, Part, RunConfig, TrainConfig
from .data import load_data
from .errors import VaekitError
from .models import VAE, Model, ModelOutput, build_model
from .registry import (LIKELIHOODS, METRICS, MODELS, NETWORKS, OBJECTIVES, OPTIMIZERS, PLOTS, POSTERIORS, PRIORS,
                       VARIANTS)

__version__ = "0.2.0"
__all__ = ["train", "load", "open_run", "fit_sampler", "load_sampler", "load_data", "build_model", "Model", "VAE", "ModelOutput",
           "VaekitError", "RunConfig", "ModelConfig", "TrainConfig", "DataConfig", "Part", "MODELS", "NETWORKS", "POSTERIORS", "PRIORS",
           "LIKELIHOODS", "OBJECTIVES", "OPTIMIZERS", "METRICS", "PLOTS", "VARIANTS", "__version__"]
