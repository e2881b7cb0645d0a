"""Samplers fitted after training: densities over a model's latent space fitted to its codes.

``vaekit fit-sampler RUN --sampler NAME`` fits one (``vaekit.fit_sampler`` in Python) and
``vaekit sample RUN --sampler NAME`` decodes its draws. Each module registers one in ``SAMPLERS``.
"""
from . import gmm, maf, normal, two_stage  # noqa: F401  (register the samplers)
from .base import Sampler  # noqa: F401
from .build import build_sampler  # noqa: F401
