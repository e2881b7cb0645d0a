"""The contract between a model and everything that reads it, and the one shared piece of maths.

``output``: what a model's ``forward`` returns (ModelOutput, Latent) and what it can do
(Capabilities). ``bounds``: ELBO terms and importance weights from that output, for any model.
Objectives, metrics, plots and models all build on this package; it imports none of them.
"""
from .bounds import (ElboTerms, elbo_terms, importance_sampled_log_likelihood, importance_weight_parts,
                     log_importance_weights)
from .output import Capabilities, Latent, ModelOutput

__all__ = ["ModelOutput", "Latent", "Capabilities", "ElboTerms", "elbo_terms", "log_importance_weights",
           "importance_weight_parts", "importance_sampled_log_likelihood"]
