"""vaekit: train, evaluate, sample and inspect variational autoencoders."""
from .api import load, train
from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
from .data import load_data
from .errors import VaekitError
from .models import VAE, build_model

__version__ = "0.1.0"
__all__ = ["train", "load", "load_data", "build_model", "VAE", "VaekitError", "RunConfig", "ModelConfig",
           "TrainConfig", "DataConfig", "__version__"]
