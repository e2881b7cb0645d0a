from . import optimizers as _optimizers  # noqa: F401  (registers optimizers)
from ..objectives import build_objective
from .trainer import Trainer, resolve_device

__all__ = ["Trainer", "build_objective", "resolve_device"]
