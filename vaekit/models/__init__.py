"""Model structures (registered in MODELS) and the contract they share; importing registers them."""
from .base import Model
from ..contract.bounds import elbo_terms, importance_weight_parts, log_importance_weights
from .build import build_model
from ..contract.output import Capabilities, Latent, ModelOutput
from .vae import VAE
from . import factorvae, fsq, ladder, rvq, vqgan, vqvae  # noqa: F401,E402  (register the structures)
from . import rae  # noqa: F401,E402  (registers the ae structure, the ae and rae objectives)
from . import aae, vaegan  # noqa: F401,E402  (adversarial structures: aae, vae-gan)
from . import jointvae  # noqa: F401,E402  (registers the jointvae structure, joint-capacity objective)
from . import piwae  # noqa: F401,E402  (registers the piwae structure and objective)
from . import hvae  # noqa: F401,E402  (registers the hvae structure: tempered Hamiltonian dynamics)

__all__ = ["Model", "VAE", "build_model", "ModelOutput", "Latent", "Capabilities", "elbo_terms",
           "log_importance_weights", "importance_weight_parts"]
