"""What the trainer measures on the validation split after each epoch."""
from __future__ import annotations

from typing import Callable, Dict

from .. import faults
from ..data.batching import inference_batch_size, iterate_batches
from ..evaluate import EvalContext, compute_metrics
from ..models.helpers import evaluating
from .distributed import Dist


def end_of_epoch(model, objective, train, val, dist: Dist, tc, context: Callable[[], EvalContext]) -> Dict[str, float]:
    """After an epoch: the model's prior fitted to the training split, then the validation terms, with
    the metrics ``tc.val_metrics`` (``context()`` gives theirs) computed by the writing rank."""
    with evaluating(model):
        model.fit_prior(iterate_batches(train, max(tc.batch_size, inference_batch_size(train))))
    dist.after_step(model)  # the fitted prior's buffers, rank 0's everywhere
    val_terms = validate(model, objective, val, dist) if len(val) else {}
    if len(val) and tc.val_metrics:  # the objective's own terms (model units) win a name clash
        metrics = dist.from_writer(lambda: val_metrics(model, val, tc.val_metrics, context()))
        val_terms.update({k: v for k, v in metrics.items() if k not in val_terms})
    return val_terms


def validate(model, objective, data, dist: Dist) -> Dict[str, float]:
    """The objective's terms (and losses) on ``data`` in eval mode, per-example means over every rank."""
    sums, n = {}, 0
    with evaluating(model):
        for x, y in iterate_batches(data, inference_batch_size(data), shard=dist.shard):
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
