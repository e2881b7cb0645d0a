"""Dataset-level ELBO and its terms, in nats per example (original units for tables)."""
from __future__ import annotations

from typing import Dict, Optional

from ..contract.bounds import elbo_terms
from ..contract.keys import layer_key
from ..data.batching import inference_batch_size
from ..data.types import TensorData
from ..registry import METRICS
from .base import Metric
from .units import CONDITIONAL, bits_method, bits_per_dim, log_jacobian, no_bits_reason, scored_batches, units


def evaluate_elbo(model, data: TensorData, batch_size: Optional[int] = None, info=None) -> Dict[str, float]:
    """Single-sample ELBO over ``data`` (Kingma & Welling 2014, eq. 3), from :func:`elbo_terms`.

    Per-example means: ``elbo`` = E_q[log p(x|z)] - KL (higher is better), ``recon`` =
    -E_q[log p(x|z)], ``kl`` = KL(q(z|x) || p(z)) summed over stochastic layers (``kl_1``,
    ``kl_2``, ... each, top first, when there are several), and ``n`` examples. Tables are
    reported in their original units (see :mod:`.units`). ``bits_per_dim`` is -log2 P(x) / D
    bounded through the ELBO where it is meaningful (``bits_per_dim_method`` says how), and
    ``bits_per_dim_none`` says why not otherwise; ``info`` describes ``data`` (its levels, a table's
    statistics). Draws z from the global torch RNG. ``batch_size``: default :func:`inference_batch_size`.
    """
    batch_size = batch_size or inference_batch_size(data)
    sums = _sum_terms(model, data, batch_size)
    n = int(sums.pop("n"))
    if n == 0:
        return {"n": 0}
    result = {k: v / n for k, v in sums.items()}
    jac = log_jacobian(info)
    result["elbo"] += jac
    result["recon"] -= jac
    result["units"] = units(info)
    if model.num_classes:
        result["conditional"] = CONDITIONAL
    method, levels = bits_method(model, info)
    if method is None:
        result["bits_per_dim_none"] = no_bits_reason(model, info)
    else:
        log_p = result["elbo"] if method == "exact" else \
            _sum_terms(model, data, batch_size, levels)["elbo"] / n
        result["bits_per_dim"] = bits_per_dim(log_p, model, method, levels)
        result["bits_per_dim_method"] = _describe(method, levels, "the ELBO")
    result["n"] = n
    return result


def _sum_terms(model, data: TensorData, batch_size: int, dequantize_levels: int = 0) -> Dict[str, float]:
    """Sums over ``data`` of the per-example ELBO terms (model units), and ``n``."""
    sums, n = {}, 0
    for x, c in scored_batches(model, data, batch_size, dequantize_levels):
        t = elbo_terms(model(x, c), x)
        values = {"elbo": t.elbo, "recon": t.recon, "kl": t.kl}
        if len(t.kls) > 1:
            values.update({layer_key(i + 1): kl for i, kl in enumerate(t.kls)})
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + float(v.double().sum())
        n += x.shape[0]
    sums["n"] = n
    return sums


def _describe(method: str, levels: int, bound: str) -> str:
    if method == "exact":
        return f"exact: the likelihood is a probability over the data's {levels} values; from {bound}"
    return (f"dequantized (Theis et al. 2016): {levels}-level data, uniform noise within each value's bin; "
            f"from {bound}")


@METRICS.register("elbo")
class ElboMetric(Metric):
    """The ELBO and its terms (see :func:`evaluate_elbo`)."""

    requires = ("likelihood",)
    title = "the ELBO"
    paper = "Kingma & Welling 2014"
    meanings = {
        "elbo": "evidence lower bound, single sample (higher is better)",
        "recon": "-E_q[log p(x|z)], the reconstruction term",
        "kl": "KL(q(z|x) || p(z)), summed over stochastic layers",
        "bits_per_dim": "-log2 P(x) / D bounded through the ELBO (lower is better)",
    }

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, float]:
        return evaluate_elbo(model, data, info=None if ctx is None else ctx.info)

