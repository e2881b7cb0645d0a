"""The sigma-VAE: a Gaussian decoder whose variance is calibrated, not a hand-set constant.

Rybkin, Daniilidis & Levine 2021, "Simple and Effective VAE Training with Calibrated Decoders":
the "optimal sigma-VAE" sets one shared sigma^2 to its maximum-likelihood value, the batch's mean
squared error (sec. 3.2). :class:`~vaekit.distributions.likelihoods.GaussianLikelihood` with
``sigma="optimal"`` implements it; this file only names the composition in the zoo.
"""
from __future__ import annotations

from ..registry import VARIANTS

VARIANTS.add("sigma-vae", "sigma-VAE: a Gaussian decoder with the optimal shared variance (the batch's mean "
             "squared error), so the reconstruction and KL terms stay balanced.",
             "Rybkin, Daniilidis & Levine 2021, Simple and Effective VAE Training with Calibrated Decoders",
             model={"likelihood": {"name": "gaussian", "args": {"sigma": "optimal"}}})
