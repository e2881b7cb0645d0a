from .elbo import evaluate_elbo
from .likelihood import evaluate_log_likelihood, log_likelihood

__all__ = ["evaluate_elbo", "evaluate_log_likelihood", "log_likelihood"]
