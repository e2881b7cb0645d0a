"""Figures of what a model learned: latent maps, manifold grids, samples, reconstructions, curves.

Every ``plot_*`` function writes one file atomically and returns its path.
"""
from ..rundir import read_metrics
from .curves import plot_curves
from .grid import image_grid, save_image_grid
from .latent import latent_embedding, plot_latent
from .manifold import active_dimensions, latent_activity, manifold_grid, plot_manifold
from .recon import plot_reconstructions, plot_samples
from . import kinds as _kinds  # noqa: F401,E402  (registers the plots)

__all__ = ["image_grid", "save_image_grid", "latent_embedding", "plot_latent", "active_dimensions",
           "latent_activity", "manifold_grid", "plot_manifold", "read_metrics", "plot_curves",
           "plot_samples", "plot_reconstructions"]
