"""Optimizers by name, one per parameter group of the model."""
from typing import Dict, List

import torch

from ..errors import VaekitError
from ..registry import OPTIMIZERS, accepted_args

FUSED_DEVICES = ("cpu", "cuda")  # where torch has fused Adam/AdamW/SGD kernels

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
        if can_fuse(OPTIMIZERS.get(part.name), args, params):
            args["fused"] = True
        optimizers[name] = OPTIMIZERS.build(part.name, args, params, where=f"group {name}'s optimizer")
    return optimizers


def can_fuse(optimizer, args: dict, params: List[torch.nn.Parameter]) -> bool:
    """Use the fused kernel (one pass over all parameters per step instead of several) where torch has
    one and the user chose no implementation: a small network's Adam step is mostly per-tensor kernel
    launches, which fusing removes (benchmarks/techniques.py ``fused-adam``; the README has the numbers)."""
    if "fused" not in accepted_args(optimizer) or "fused" in args or "foreach" in args:
        return False
    return all(p.is_floating_point() and p.device.type in FUSED_DEVICES
               and not isinstance(p, torch.nn.parameter.UninitializedParameter) for p in params)

