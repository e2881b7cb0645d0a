"""Posteriors, priors, likelihoods and KL helpers, all torch.distributions based."""
from .kl import kl_per_dimension, kl_term
from .likelihoods import BernoulliLikelihood, GaussianLikelihood, Likelihood, default_likelihood
from .posteriors import DiagonalGaussian
from .priors import StandardNormal

__all__ = ["kl_term", "kl_per_dimension", "BernoulliLikelihood", "GaussianLikelihood", "Likelihood",
           "default_likelihood", "DiagonalGaussian", "StandardNormal"]
from . import image_likelihoods as _image_likelihoods  # noqa: F401,E402  (registers continuous-bernoulli, laplace)
from . import pixel_likelihoods as _pixel_likelihoods  # noqa: F401,E402  (registers categorical256, dlogistic)
from . import mog_prior as _mog_prior  # noqa: F401,E402  (registers the mog prior)
from . import flows as _flows  # noqa: F401,E402  (registers planar, radial, iaf posteriors and their variants)
from . import gumbel as _gumbel  # noqa: F401,E402  (registers gumbel, uniform-categorical, gumbel-vae)
from . import vmf as _vmf  # noqa: F401,E402  (registers vmf, uniform-sphere, svae)
from . import poincare as _poincare  # noqa: F401,E402  (registers wrapped-normal, wrapped-normal-origin, pvae)
from . import counts as _counts  # noqa: F401,E402  (registers poisson, nb, zinb)
