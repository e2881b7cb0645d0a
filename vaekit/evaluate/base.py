"""The metrics registry: a metric is a number about a model on data, looked up by name.

``vaekit evaluate`` and validation ask for metrics by name. A metric that does not apply
(it needs a capability the model lacks, labels, ground-truth factors, a weights file) says
why in one line: an error when it was asked for by name, a skipped note under ``all``.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch

from ..data.types import DataInfo, TensorData
from ..errors import VaekitError
from ..registry import METRICS


@dataclass
class EvalContext:
    """What a metric may use besides the model and the scored split.

    ``train`` is the training split, for metrics that fit something (probes, a fitted
    sampler); ``reference`` gives what a yardstick shared across runs is fitted on;
    ``source`` names the dataset (a cache key); ``seed`` seeds any randomness a metric draws;
    ``info`` describes the scored data, normalized as the model's training data was (its levels, a
    table's statistics); ``objective`` names the objective the model was trained with; ``lpips`` holds
    the run's LPIPS files (``config.lpips``: net, backbone, lin), the lpips metric's defaults.
    """

    train: Optional[TensorData] = None
    source: Optional[str] = None
    info: Optional[DataInfo] = None
    seed: int = 0
    reference: Optional[Callable[[], TensorData]] = None  # every non-test example, in the dataset's order
    objective: str = "elbo"
    lpips: Optional[Dict[str, Optional[str]]] = None

    def reference_data(self) -> Optional[TensorData]:
        """The data a shared yardstick (``fd``'s feature network) is fitted on: every non-test example,
        independent of the run's seed and validation share, so runs compare; else the training split."""
        return self.reference() if self.reference is not None else self.train


class Metric:
    """``metric(model, data, ctx) -> {key: value}``.

    ``requires`` lists the model capabilities it needs; ``meanings`` says in a few words what
    each key it returns means and in which units (the CLI's table prints them); ``paper``
    cites the source. ``unavailable`` returns why the metric cannot run here, or None.
    ``group`` names the metric that computes this one too (``knn`` is part of ``latent``): ``all``
    leaves it out. ``shortcuts`` maps a command-line option to the option of the metric it stands for
    (``{"--k": "k"}``: ``--k 100`` is ``--set nll.k=100``); with ``shortcut_adds`` giving one also
    computes the metric.
    """

    requires: Tuple[str, ...] = ()
    title = "a metric"
    meanings: Dict[str, str] = {}
    paper = ""
    group: Optional[str] = None
    shortcuts: Dict[str, str] = {}
    shortcut_adds = False

    def unavailable(self, model, data: TensorData, ctx: EvalContext) -> Optional[str]:
        for capability in self.requires:
            why = model.why_not(capability)
            if why:
                return f"{self.title} does not apply to the {model.name} model: {why}"
        return None

    def __call__(self, model, data: TensorData, ctx: EvalContext) -> Dict[str, float]:
        raise NotImplementedError


FIRST = ("elbo", "nll", "recon", "au")  # the order tables list metrics in; the rest alphabetically
DEFAULT = ("elbo", "recon", "au")       # ``vaekit evaluate RUN`` without --metrics: cheap, and warns of collapse


def metric_names(everything: bool = False) -> list:
    """Registered metric names, the likelihood ones first. Without ``everything``, only those
    ``all`` computes (a metric that is part of a group, like ``knn`` of ``latent``, is left out)."""
    names = [n for n in FIRST if n in METRICS] + [n for n in METRICS.names() if n not in FIRST]
    return names if everything else [n for n in names if METRICS.get(n).group is None]


def compute_metrics(model, data: TensorData, names: Iterable[str], options: Dict[str, dict] = None,
                    ctx: Optional[EvalContext] = None, skipped: Optional[Callable[[str, str], None]] = None,
                    done: Optional[list] = None, strict: bool = True) -> dict:
    """Every named metric of ``model`` on ``data``, merged into one dict; options by metric name.

    ``names`` may hold the groups ``all`` (every registered metric) and ``default`` (those of
    :data:`DEFAULT`): their members that do not apply are reported through ``skipped(name, reason)``.
    A metric named on its own that cannot run is an error, raised before any work, unless not
    ``strict`` (``vaekit compare``: one run's missing metric is a cell, not a failure). The names of
    the metrics computed are appended to ``done``. Each metric starts from torch's generator
    seeded with ``ctx.seed``; the caller's generator state is restored afterwards.
    """
    options, ctx = options or {}, ctx or EvalContext()
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the caller's random stream (training's) is left as it was
        return _compute(model, data, names, options, ctx, skipped, done, strict)


def _compute(model, data, names, options, ctx, skipped, done, strict) -> dict:
    metrics, seen = [], set()
    for name, lenient in expand(names):
        if name in seen:
            continue
        seen.add(name)
        metric = METRICS.build(name, options.get(name, {}), where="the metric")
        reason = metric.unavailable(model, data, ctx)
        if reason is None:
            metrics.append((name, metric))
        elif lenient or not strict:
            if skipped:
                skipped(name, reason)
        else:
            raise VaekitError(reason)
    result = {}
    for name, metric in metrics:
        torch.manual_seed(ctx.seed)  # each metric's numbers do not depend on which others ran before it
        result.update(metric(model, data, ctx))
        if done is not None:
            done.append(name)
    return result


def expand(names: Iterable[str]) -> list:
    """``[(metric name, lenient)]``: the groups ``all`` and ``default`` become their members, which
    are skipped when they do not apply (lenient); a metric named on its own must apply."""
    out = []
    for name in names:
        if name == "all":
            out += [(n, True) for n in metric_names()]
        elif name == "default":
            out += [(n, True) for n in DEFAULT if n in METRICS]
        else:
            out.append((name, False))
    return out


def meanings(names: Iterable[str]) -> Dict[str, str]:
    """What each key of the named metrics means, for tables."""
    out = {}
    for name, _ in expand(names):
        out.update(METRICS.get(name).meanings)
    return out


@contextmanager
def quiet():
    """No warnings from scikit-learn, SciPy or NumPy inside the block: metrics check their inputs
    first, and what these libraries would still say (an unconverged probe) does not change what
    the number means. Users see only vaekit's own messages."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
