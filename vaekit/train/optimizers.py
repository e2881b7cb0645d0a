"""Optimizers by name, one per parameter group of the model."""
from typing import Dict, List, Optional

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



def check_losses(losses: Dict[str, torch.Tensor], groups, objective: str) -> None:
    """Every parameter group needs a loss from the objective."""
    missing = [name for name in groups if name not in losses]
    if missing:
        raise VaekitError(f"the {objective} objective gives no loss for this model's parameter group(s) "
                          f"{', '.join(missing)}; train with the objective its variant names "
                          "(`vaekit models --json` lists each variant's config)")


def step_all(optimizers: Dict[str, torch.optim.Optimizer], losses: Dict[str, torch.Tensor], *, watch, dist,
             step: int, grad_clip: Optional[float] = None, examples: int = 1) -> None:
    """Optimizer step ``step`` (counted from 1): each optimizer steps on its own loss, its gradients from
    that loss alone (none where the loss has no graph: the optimizer then leaves its parameters and state be) (and, under torchrun, from every rank's, weighted by their ``examples``). Each loss,
    and each clipped gradient norm, is noted in the non-finite ``watch``."""
    for name, loss in losses.items():
        watch.note(name, loss, step)  # read every watch.every steps: no sync here
    groups = list(optimizers.items())
    if len(groups) == 1:
        (name, opt), = groups
        opt.zero_grad(set_to_none=True)
        losses[name].backward()
    else:  # all gradients first, from the same forward pass; then every step
        for i, (name, opt) in enumerate(groups):
            opt.zero_grad(set_to_none=True)
            if losses[name].requires_grad:  # a loss without a graph (a group sitting this step out): no gradients
                losses[name].backward(inputs=_params(opt), retain_graph=i < len(groups) - 1)
    dist.reduce_gradients(optimizers, examples)
    for name, opt in groups:
        if grad_clip:  # the norm it computes anyway is watched too (a nan there spreads to every weight)
            watch.note(f"{name} gradient", torch.nn.utils.clip_grad_norm_(_params(opt), grad_clip), step)
        opt.step()


def _params(opt: torch.optim.Optimizer) -> List[torch.nn.Parameter]:
    return [p for g in opt.param_groups for p in g["params"]]
