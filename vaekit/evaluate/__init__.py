from .elbo import evaluate_elbo

__all__ = ["evaluate_elbo"]
