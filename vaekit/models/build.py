"""Build a VAE from a config, every part looked up in a registry by name."""
from __future__ import annotations

from typing import Optional

from torch import nn

from .. import distributions as _distributions  # noqa: F401  (registers parts)
from .. import nn as _networks  # noqa: F401  (registers networks)
from ..config import ModelConfig
from ..distributions import default_likelihood
from ..errors import VaekitError
from ..registry import LIKELIHOODS, NETWORKS, POSTERIORS, PRIORS
from .vae import VAE


def build_model(cfg: ModelConfig, encoder: Optional[nn.Module] = None,
                decoder: Optional[nn.Module] = None) -> VAE:
    """Compose the model ``cfg`` describes; a user's own encoder/decoder replace the named network."""
    if cfg.data_shape is None:
        raise VaekitError("the model config has no data_shape; it is filled in from the training data")
    if cfg.latent_dim < 1:
        raise VaekitError(f"--latent-dim must be at least 1, got {cfg.latent_dim}")
    shape = tuple(cfg.data_shape)
    cond = cfg.num_classes if cfg.conditional else None
    if cfg.conditional and not cfg.num_classes:
        raise VaekitError("a conditional VAE needs labelled data; this dataset has no labels "
                          "(use class sub-folders, --label-column, or a .npz with 'y')")
    name = cfg.likelihood
    if name == "auto":
        name = default_likelihood("image" if len(shape) == 3 else "table", cfg.likelihood_args)
    try:
        likelihood = LIKELIHOODS.get(name)(shape, **cfg.likelihood_args)
    except TypeError as e:
        raise VaekitError(f"bad options for the {cfg.likelihood!r} likelihood: {e}") from None
    if (encoder is None) != (decoder is None):
        raise VaekitError("pass both encoder= and decoder= (your own modules), or neither")
    try:
        if encoder is None:
            enc_cls, dec_cls = NETWORKS.get(cfg.network)
            encoder = enc_cls(shape, cond_dim=cond or 0, **cfg.network_args)
            decoder = dec_cls(cfg.latent_dim, shape, likelihood.params_per_value, cond_dim=cond or 0,
                              **cfg.network_args)
    except TypeError as e:
        raise VaekitError(f"bad options for the {cfg.network!r} network: {e}") from None
    posterior = POSTERIORS.get(cfg.posterior)(getattr(encoder, "out_dim", None), cfg.latent_dim)
    prior = PRIORS.get(cfg.prior)(cfg.latent_dim)
    return VAE(encoder, decoder, posterior, prior, likelihood, cfg.latent_dim, shape, num_classes=cond)
