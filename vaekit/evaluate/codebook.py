"""Codebook metrics of a quantized model (vqvae, vqgan, fsq, rvq): how much of its codebook it uses.

``usage`` is the share of the K codes chosen at least once on the evaluated split; ``perplexity`` is exp of
the entropy of the average code distribution (van den Oord et al. 2017 track it; K for codes used evenly,
1 for one code); ``bits_per_code`` is what one position's code index holds: log2 K per stage, or
sum_i log2 L_i for FSQ's levels (Mentzer et al. 2023). A residual quantizer's usage and perplexity are
each stage's, averaged over its stages.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from ..data.batching import inference_batch_size, iterate_batches
from ..data.types import TensorData
from ..models.helpers import evaluating
from ..models.quantizers import codebook_stats
from ..registry import METRICS
from .base import Metric


@METRICS.register("codebook")
class CodebookMetric(Metric):
    """Codebook usage, perplexity and bits per code on the evaluated split."""

    title = "the codebook metrics"
    paper = ("van den Oord, Vinyals & Kavukcuoglu 2017 (perplexity); Mentzer et al. 2023 (FSQ's bits); "
             "Zeghidour et al. 2021 (per stage of a residual quantizer)")
    meanings = {"usage": "share of the codebook's codes used at least once on this split (per stage, averaged)",
                "perplexity": "exp of the entropy of the average code distribution, codes (K when used evenly)",
                "bits_per_code": "bits of one position's code index: stages x log2 K, or sum of log2 levels (FSQ)"}

    def __init__(self, batch_size: Optional[int] = None):
        self.batch_size = None if batch_size is None else int(batch_size)

    def unavailable(self, model, data: TensorData, ctx) -> str:
        if not hasattr(model, "codes_of"):
            return f"{self.title} do not apply to the {model.name} model: it has no codebook (a quantized model has)"
        return None

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, float]:
        stages, codes = model.stages, model.codes
        chunks = []
        with evaluating(model), torch.no_grad():
            for x, y in iterate_batches(data, self.batch_size or inference_batch_size(data), device=model.device):
                chunks.append(model.codes_of(x, y if model.conditioned else None).reshape(-1, stages).cpu())
        index = torch.cat(chunks)                                       # (B * N, S)
        stats = [codebook_stats(index[:, s], codes) for s in range(stages)]
        return {"usage": float(sum(u for u, _ in stats) / stages),
                "perplexity": float(sum(p for _, p in stats) / stages),
                "bits_per_code": float(model.codebook.bits)}
