"""The metrics registry: a metric is a number about a model on data, looked up by name.

``vaekit evaluate`` and validation ask for metrics by name; a metric that does not apply to
a model (it needs a capability the model lacks) says why in one line.
"""
from __future__ import annotations

from typing import Dict, Iterable, Tuple

from ..data.types import TensorData
from ..registry import METRICS


class Metric:
    """``metric(model, data) -> {name: value}``; ``requires`` lists the model capabilities it needs."""

    requires: Tuple[str, ...] = ()
    title = "a metric"

    def check(self, model) -> None:
        for capability in self.requires:
            model.require(capability, self.title)

    def __call__(self, model, data: TensorData) -> Dict[str, float]:
        raise NotImplementedError


def compute_metrics(model, data: TensorData, names: Iterable[str], options: Dict[str, dict] = None) -> dict:
    """Every named metric of ``model`` on ``data``, merged into one dict; options by metric name."""
    options = options or {}
    metrics = [METRICS.build(name, options.get(name, {}), where="the metric") for name in names]
    for metric in metrics:
        metric.check(model)  # every refusal before any work
    result = {}
    for metric in metrics:
        result.update(metric(model, data))
    return result
