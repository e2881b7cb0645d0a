"""The ``disentanglement`` metric: five standard scores of a model trained on ``shapes``.

The scores (beta-VAE, FactorVAE, MIG, SAP, DCI; formulas in
:mod:`vaekit.evaluate.disentanglement_scores`) need the generator of the data: they draw
fresh factor values, some held fixed, render them (:class:`vaekit.data.shapes.ShapesGroundTruth`)
and encode the images with the posterior mean, ``model.embed``. So the metric applies to
a model that can encode, evaluated on a dataset whose generator vaekit knows (``shapes``,
``shapes-N``); the evaluated split itself is not scored. Sizes follow disentanglement_lib's
study (Locatello et al. 2019); smaller ones are much quicker and noisier::

    compute_metrics(model, data, ["disentanglement"],
                    {"disentanglement": {"n_train": 1000, "n_test": 500, "scores": ["mig", "dci"]}}, ctx)

Options: ``n_train`` / ``n_test`` points (votes for the beta-VAE and FactorVAE scores, codes
for MIG, SAP and DCI, which share one draw), ``batch_size`` draws per vote, ``n_variance``
draws for the FactorVAE score's scales, ``prune`` its threshold, ``bins`` for MIG,
``dci_trees`` boosting stages, ``scores`` which of beta_vae, factorvae, mig, sap, dci. Each
score draws from its own stream of ``ctx.seed``, so a score does not change when others are
left out. With the defaults the beta-VAE and FactorVAE scores encode about 3 million images,
and DCI grows 100 trees per value of every factor (113 values for shapes) on 10,000 codes:
many minutes on a CPU. Fewer ``dci_trees`` or leaving scores out is quicker.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..data.shapes import ground_truth_for
from ..data.types import TensorData
from ..errors import require
from ..models.helpers import posterior_moments
from ..registry import METRICS
from .base import EvalContext, Metric
from .disentanglement_scores import beta_vae_score, dci, factorvae_score, mig, sample_codes, sap

SCORES = ("beta_vae", "factorvae", "mig", "sap", "dci")
MEANINGS = {
    "beta_vae_score": "beta-VAE score (Higgins et al. 2017): accuracy of a linear classifier naming the factor two "
                      "batches share from their mean code differences, fraction (chance: 1 / factors)",
    "factorvae_score": "FactorVAE score (Kim & Mnih 2018): accuracy naming the factor held fixed from the least "
                       "varying scaled code dimension, majority vote, fraction (chance: 1 / factors)",
    "mig": "mutual information gap (Chen et al. 2018): per factor, the gap between the two code dimensions most "
           "informative of it over its entropy, 0..1",
    "sap": "SAP score (Kumar et al. 2018): per factor, the gap in linear-SVM accuracy between the two code "
           "dimensions that best predict it alone, 0..1",
    "dci_disentanglement": "DCI disentanglement (Eastwood & Williams 2018): 1 - entropy of the factors each code "
                           "dimension matters for (boosted-tree importances), 0..1",
    "dci_completeness": "DCI completeness: 1 - entropy of the code dimensions each factor is read from, 0..1",
    "dci_informativeness": "DCI informativeness: test accuracy of boosted trees predicting each factor from the "
                           "codes, fraction, mean over factors",
}
KEYS = {"beta_vae": ("beta_vae_score",), "factorvae": ("factorvae_score",), "mig": ("mig",), "sap": ("sap",),
        "dci": ("dci_disentanglement", "dci_completeness", "dci_informativeness")}
IMAGES_AT_ONCE = 1024  # rendered and encoded together


def model_representation(model, truth):
    """``represent(factors (n, F)) -> posterior means (n, D)`` of ``model`` on ``truth``'s
    renders, float64 on the CPU. A conditional model is given each image's label."""
    def represent(factors: np.ndarray) -> np.ndarray:
        parts = []
        for start in range(0, len(factors), IMAGES_AT_ONCE):
            f = factors[start:start + IMAGES_AT_ONCE]
            images = TensorData(torch.from_numpy(truth.render(f)), torch.from_numpy(truth.labels(f)))
            parts.append(posterior_moments(model, images, batch_size=IMAGES_AT_ONCE, flat=True)[0].double().numpy())
        return np.concatenate(parts)

    return represent


def disentanglement_scores(represent, space, seed: int = 0, n_train: int = 10000, n_test: int = 5000,
                           batch_size: int = 64, n_variance: int = 10000, bins: int = 20, prune: float = 0.05,
                           dci_trees: int = 100, scores: Sequence[str] = SCORES) -> Dict[str, float]:
    """The keys of :data:`MEANINGS` for ``scores``, each drawn from its own stream of ``seed``."""
    def rng(score: str) -> np.random.Generator:
        return np.random.default_rng([seed, SCORES.index(score)])

    out = {}
    if "beta_vae" in scores:
        out["beta_vae_score"] = beta_vae_score(represent, space, rng("beta_vae"), n_train, n_test, batch_size)
    if "factorvae" in scores:
        out["factorvae_score"] = factorvae_score(represent, space, rng("factorvae"), n_train, n_test, batch_size,
                                                 n_variance, prune)
    if {"mig", "sap", "dci"} & set(scores):  # one draw shared by the three (SCORES.index("mig"))
        draw = rng("mig")
        codes, factors = sample_codes(represent, space, n_train, draw)
        if "mig" in scores:
            out["mig"] = mig(codes, factors, bins)
        if {"sap", "dci"} & set(scores):
            codes_test, factors_test = sample_codes(represent, space, n_test, draw)
            if "sap" in scores:
                out["sap"] = sap(codes, factors, codes_test, factors_test)
            if "dci" in scores:
                parts = dci(codes, factors, codes_test, factors_test, dci_trees, seed)
                out.update({f"dci_{k}": v for k, v in parts.items()})
    return out


@METRICS.register("disentanglement")
class DisentanglementMetric(Metric):
    """beta-VAE, FactorVAE, MIG, SAP and DCI scores (see :func:`disentanglement_scores`)."""

    requires = ("encode",)
    title = "the disentanglement scores"
    meanings = MEANINGS
    paper = ("Higgins et al. 2017 (beta-VAE score); Kim & Mnih 2018 (FactorVAE score); Chen et al. 2018 (MIG); "
             "Kumar et al. 2018 (SAP); Eastwood & Williams 2018 (DCI); as computed in Locatello et al. 2019")

    def __init__(self, n_train: int = 10000, n_test: int = 5000, batch_size: int = 64, n_variance: int = 10000,
                 bins: int = 20, prune: float = 0.05, dci_trees: int = 100, scores: list = list(SCORES)):
        for name, value, least in (("n_train", n_train, 2), ("n_test", n_test, 1), ("batch_size", batch_size, 2),
                                   ("n_variance", n_variance, 2), ("bins", bins, 1), ("dci_trees", dci_trees, 1)):
            require(value >= least, f"option {name} of the disentanglement metric must be at least {least}, "
                                    f"got {value}")
        unknown = [s for s in scores if s not in SCORES]
        require(scores and not unknown, f"option scores of the disentanglement metric takes some of "
                                        f"{', '.join(SCORES)}; got {list(scores)}")
        self.options = dict(n_train=n_train, n_test=n_test, batch_size=batch_size, n_variance=n_variance,
                            bins=bins, prune=float(prune), dci_trees=dci_trees, scores=tuple(scores))
        self.meanings = {k: MEANINGS[k] for s in SCORES if s in scores for k in KEYS[s]}

    def unavailable(self, model, data: TensorData, ctx: EvalContext) -> Optional[str]:
        reason = super().unavailable(model, data, ctx)
        if reason:
            return reason
        name = _dataset_name(ctx)
        if ground_truth_for(name) is None:
            return (f"{self.title} need data drawn from known generative factors, rendered on demand (shapes, "
                    f"shapes-N); the evaluated data is {name or 'not named (EvalContext(source=...))'}")
        if tuple(model.data_shape) != (1, 64, 64):
            return (f"{self.title} encode 64x64 shapes images, and the {model.name} model was built for "
                    f"examples of shape {tuple(model.data_shape)}")
        return None

    def __call__(self, model, data: TensorData, ctx: EvalContext) -> Dict[str, float]:
        truth = ground_truth_for(_dataset_name(ctx))
        return disentanglement_scores(model_representation(model, truth), truth, ctx.seed, **self.options)


def _dataset_name(ctx: Optional[EvalContext]) -> Optional[str]:
    if ctx is None:
        return None
    return ctx.info.name if ctx.info is not None else ctx.source
