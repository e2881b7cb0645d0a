"""Metrics, registered by name; importing registers them."""
from .base import Metric, compute_metrics
from .elbo import evaluate_elbo
from .likelihood import evaluate_log_likelihood, log_likelihood

__all__ = ["Metric", "compute_metrics", "evaluate_elbo", "evaluate_log_likelihood", "log_likelihood"]
