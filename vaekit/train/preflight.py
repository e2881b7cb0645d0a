"""Checks before anything is written: the model, its parameter groups and the objective fit together."""
from __future__ import annotations

import torch

from ..data.batching import iterate_batches
from ..errors import VaekitError
from ..models.helpers import evaluating
from ..registry import METRICS
from .optimizers import check_losses, make_optimizers


def preflight(model, objective, config, train) -> None:
    """Two examples of ``train`` through the objective, in eval mode without gradients, leaving the
    random state as it was: a model and an objective that do not fit together fail here."""
    tc = config.train
    allowed = model.objectives
    if allowed is not None and tc.objective.name not in allowed:
        raise VaekitError(f"the {config.model.variant} model trains with the {' or '.join(allowed)} objective, not "
                          f"{tc.objective.name}; drop --objective")
    groups = model.parameter_groups()
    check_partition(groups, model)
    make_optimizers(groups, tc)  # unknown group names in train.group_optimizers fail here
    x, y = next(iterate_batches(train, 2, batches=1))
    with torch.random.fork_rng(devices=[]), evaluating(model):
        out = objective(model, x, y)
    check_losses(out.losses, groups, tc.objective.name)
    monitor = objective.monitor[0]
    if monitor not in out.named():
        raise RuntimeError(f"{type(objective).__name__}.monitor names {monitor!r}, which is not among its "
                           f"terms {sorted(out.named())}")


def check_partition(groups, model) -> None:
    """Every trainable parameter in exactly one group: in two it would be stepped twice, in none never."""
    seen = [id(p) for params in groups.values() for p in params]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if len(seen) != len(set(seen)) or set(seen) != trainable:
        raise RuntimeError(f"{type(model).__name__}.parameter_groups() must hold every trainable parameter "
                           "exactly once")


def check_val_metrics(model, val, parts, context) -> None:
    """Each metric of train.val_metrics exists, takes its options and applies to this model."""
    for m in parts:
        reason = METRICS.build(m.name, m.args, where="the validation metric").unavailable(model, val, context)
        if reason:
            raise VaekitError(f"train.val_metrics: {reason}")
