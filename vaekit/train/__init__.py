from . import optimizers as _optimizers  # noqa: F401  (registers optimizers)
from .trainer import Trainer, build_objective, resolve_device

__all__ = ["Trainer", "build_objective", "resolve_device"]
