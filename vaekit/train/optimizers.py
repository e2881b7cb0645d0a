"""Optimizers by name."""
import torch

from ..registry import OPTIMIZERS

OPTIMIZERS.register("adam")(torch.optim.Adam)
OPTIMIZERS.register("adamw")(torch.optim.AdamW)
OPTIMIZERS.register("sgd")(torch.optim.SGD)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params, lr: float = 1e-3):
    """RMSprop with Keras' defaults (rho 0.9, eps 1e-7), as the classic conv VAE used."""
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)


def make_optimizer(name: str, params, lr: float):
    return OPTIMIZERS.get(name)(params, lr=lr)
