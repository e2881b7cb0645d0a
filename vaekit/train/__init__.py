from . import optimizers as _optimizers  # noqa: F401  (registers optimizers)
from .trainer import Trainer, resolve_device

__all__ = ["Trainer", "resolve_device"]
