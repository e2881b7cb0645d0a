"""Posteriors, priors, likelihoods and KL helpers, all torch.distributions based."""
from .kl import kl_per_dimension, kl_term
from .likelihoods import BernoulliLikelihood, GaussianLikelihood, Likelihood, default_likelihood
from .posteriors import DiagonalGaussian
from .priors import StandardNormal

__all__ = ["kl_term", "kl_per_dimension", "BernoulliLikelihood", "GaussianLikelihood", "Likelihood",
           "default_likelihood", "DiagonalGaussian", "StandardNormal"]
