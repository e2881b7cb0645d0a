"""What the trainer measures on the validation split after each epoch."""
from __future__ import annotations

from typing import Dict

from .. import faults
from ..data.batching import iterate_batches
from ..evaluate import EvalContext, compute_metrics
from ..models.helpers import evaluating
from .distributed import Dist


def validate(model, objective, data, dist: Dist) -> Dict[str, float]:
    """The objective's terms (and losses) on ``data`` in eval mode, per-example means over every rank."""
    sums, n = {}, 0
    with evaluating(model):
        for x, y in iterate_batches(data, 512, shard=dist.shard):
            faults.point("validate")
            if not len(x):
                continue
            for k, v in objective(model, x, y).named().items():
                sums[k] = sums.get(k, 0.0) + float(v) * x.shape[0]
            n += x.shape[0]
    return dist.sum_means(sums, n)


def val_metrics(model, data, parts, context: EvalContext) -> Dict[str, float]:
    """The registered metrics ``parts`` (train.val_metrics), looked up by name; numbers only, ``n`` dropped."""
    values = compute_metrics(model, data, [m.name for m in parts], {m.name: m.args for m in parts}, context)
    return {k: v for k, v in values.items() if k != "n" and isinstance(v, (int, float))}


def eval_context(splits, config) -> EvalContext:
    """Metrics that fit something during validation fit it on the training split."""
    return EvalContext(train=splits.train, source=config.data.source, info=splits.info, seed=config.train.seed,
                       objective=config.train.objective.name, lpips=vars(config.lpips))
