"""Metrics, registered by name; importing registers them."""
from .base import EvalContext, Metric, compute_metrics, meanings, metric_names
from . import decomposition, recon  # noqa: F401  (registers au, recon)
from .elbo import evaluate_elbo
from .likelihood import evaluate_log_likelihood, log_likelihood
from . import latent as _latent  # noqa: F401,E402  (registers knn, probe, silhouette, latent)
from . import disentanglement as _disentanglement  # noqa: F401,E402  (registers disentanglement)
from . import fidelity as _fidelity  # noqa: F401,E402  (registers fd, fid)
from . import codebook as _codebook  # noqa: F401,E402  (registers codebook)
from . import image_quality as _image_quality  # noqa: F401,E402  (registers psnr, ssim, lpips, rfid)

__all__ = ["EvalContext", "Metric", "compute_metrics", "meanings", "metric_names", "evaluate_elbo", "evaluate_log_likelihood", "log_likelihood"]
