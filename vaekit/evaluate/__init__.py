"""Metrics, registered by name; importing registers them."""
from .base import EvalContext, Metric, compute_metrics, meanings, metric_names
from .elbo import evaluate_elbo
from .likelihood import evaluate_log_likelihood, log_likelihood

__all__ = ["EvalContext", "Metric", "compute_metrics", "meanings", "metric_names", "evaluate_elbo", "evaluate_log_likelihood", "log_likelihood"]
