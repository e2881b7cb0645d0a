"""Build any model from its config: the structure and every part looked up in a registry by name."""
from __future__ import annotations

import inspect
from typing import Optional

from torch import nn

from .. import distributions as _distributions  # noqa: F401  (registers parts)
from .. import nn as _networks  # noqa: F401  (registers networks)
from ..config import ModelConfig
from ..distributions import default_likelihood
from ..errors import VaekitError
from ..registry import LIKELIHOODS, MODELS, NETWORKS, POSTERIORS, PRIORS, check_args, keyword_options
from .base import Model


class Parts:
    """Builds the parts a structure asks for, from the config, with their args checked."""

    def __init__(self, cfg: ModelConfig, encoder: Optional[nn.Module] = None, decoder: Optional[nn.Module] = None):
        self.cfg = cfg
        self.shape = tuple(cfg.data_shape)
        self.num_classes = cfg.num_classes if cfg.conditional else None
        self._encoder, self._decoder = encoder, decoder
        self.used = set()  # which configurable parts the structure asked for

    def likelihood(self):
        part = self.cfg.likelihood
        name = part.name
        if name == "auto":
            name = default_likelihood("image" if len(self.shape) == 3 else "table", part.args)
        return LIKELIHOODS.build(name, part.args, self.shape, where="the likelihood")

    def networks(self, latent_dim: int, params_per_value: int):
        """(encoder, decoder): the user's own modules, or the named network family."""
        if self._encoder is not None:
            return self._encoder, self._decoder
        part = self.cfg.network
        enc_cls, dec_cls = NETWORKS.get(part.name)
        where = f"the network {part.name!r}"
        check_args(enc_cls, part.args, where, reserved=("cond_dim",))
        check_args(dec_cls, part.args, where, reserved=("cond_dim", "params_per_value"))
        cond = self.num_classes or 0
        return (enc_cls(self.shape, cond_dim=cond, **part.args),
                dec_cls(latent_dim, self.shape, params_per_value, cond_dim=cond, **part.args))

    def posterior(self, in_features: Optional[int], latent_dim: int):
        self.used.add("posterior")
        part = self.cfg.posterior
        return POSTERIORS.build(part.name, part.args, in_features, latent_dim, where="the posterior")

    def prior(self, latent_dim: int):
        self.used.add("prior")
        part = self.cfg.prior
        return PRIORS.build(part.name, part.args, latent_dim, where="the prior", data_shape=self.shape,
                            conditional=self.num_classes is not None)


def structure_options(structure) -> inspect.Signature:
    """What ``model.structure.args`` may set: ``from_config``'s own keywords or, where it forwards
    ``**options`` to the constructor, the constructor's keyword-only parameters."""
    signature = inspect.signature(structure.from_config)
    if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
        return signature
    return inspect.Signature(list(keyword_options(structure).values()))


def build_model(cfg: ModelConfig, encoder: Optional[nn.Module] = None,
                decoder: Optional[nn.Module] = None, name: Optional[str] = None) -> Model:
    """Compose the model ``cfg`` describes; a user's own encoder/decoder replace the named network.
    ``name``: what the model calls itself in messages (a run's zoo variant); default its class name."""
    if cfg.data_shape is None:
        raise VaekitError("the model config has no data_shape; it is filled in from the training data")
    if cfg.latent_dim < 1:
        raise VaekitError(f"--latent-dim must be at least 1, got {cfg.latent_dim}")
    if cfg.conditional and not cfg.num_classes:
        raise VaekitError("a conditional VAE needs labelled data; this dataset has no labels "
                          "(use class sub-folders, --label-column, or a .npz with 'y')")
    if (encoder is None) != (decoder is None):
        raise VaekitError("pass both encoder= and decoder= (your own modules), or neither")
    structure = MODELS.get(cfg.structure.name)
    check_args(structure_options(structure), cfg.structure.args, f"the model structure {cfg.structure.name!r}",
               reserved=("cfg", "parts"))
    parts = Parts(cfg, encoder, decoder)
    model = structure.from_config(cfg, parts, **cfg.structure.args)
    model.variant = name
    defaults = ModelConfig()
    for kind in ("posterior", "prior"):
        part = getattr(cfg, kind)
        if kind not in parts.used and (part.name != getattr(defaults, kind).name or part.args):
            raise VaekitError(f"the {cfg.structure.name} model builds its own {kind}, so --{kind} {part.name} "
                              f"(and model.{kind}.args) does not apply to it; drop them")
    return model
