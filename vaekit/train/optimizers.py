"""Optimizers by name, one per parameter group of the model."""
from typing import Dict, List

import torch

from ..errors import VaekitError
from ..registry import OPTIMIZERS

OPTIMIZERS.register("adam")(torch.optim.Adam)
OPTIMIZERS.register("adamw")(torch.optim.AdamW)
OPTIMIZERS.register("sgd")(torch.optim.SGD)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params, lr: float = 1e-3):
    """RMSprop with Keras' defaults (rho 0.9, eps 1e-7), as the classic conv VAE used."""
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)


def make_optimizers(groups: Dict[str, List[torch.nn.Parameter]], tc) -> Dict[str, torch.optim.Optimizer]:
    """One optimizer per parameter group: ``tc.group_optimizers[group]`` or else ``tc.optimizer``.

    The learning rate is ``tc.lr`` unless the optimizer's args give one.
    """
    unknown = sorted(set(tc.group_optimizers) - set(groups))
    if unknown:
        raise VaekitError(f"train.group_optimizers names {', '.join(unknown)}, but this model's parameter "
                          f"groups are {', '.join(groups)}")
    optimizers = {}
    for name, params in groups.items():
        part = tc.group_optimizers.get(name, tc.optimizer)
        args = {"lr": tc.lr, **part.args}
        optimizers[name] = OPTIMIZERS.build(part.name, args, params, where=f"group {name}'s optimizer")
    return optimizers

