"""Build any model from its config: the structure and every part looked up in a registry by name."""
from __future__ import annotations

import inspect
from typing import Optional, Tuple

from torch import nn

from .. import distributions as _distributions  # noqa: F401  (registers parts)
from .. import nn as _networks  # noqa: F401  (registers networks)
from ..config import ModelConfig
from ..distributions import default_likelihood
from ..errors import VaekitError
from ..registry import DISCRIMINATORS, LIKELIHOODS, MODELS, NETWORKS, POSTERIORS, PRIORS, accepted_args, check_args, keyword_options
from .base import Model
from .library import attach_library


class Parts:
    """Builds the parts a structure asks for, from the config, with their args checked."""

    def __init__(self, cfg: ModelConfig, encoder: Optional[nn.Module] = None, decoder: Optional[nn.Module] = None):
        self.cfg = cfg
        self.shape = tuple(cfg.data_shape)
        self.num_classes = cfg.num_classes if cfg.conditional else None
        self._encoder, self._decoder = encoder, decoder
        self.used = set()  # which configurable parts the structure asked for
        self.map_shape = None  # the encoder's latent map (C, h, w), where it gives one

    def likelihood(self):
        part = self.cfg.likelihood
        name = part.name
        if name == "auto":
            name = default_likelihood("image" if len(self.shape) == 3 else "table", part.args)
        return LIKELIHOODS.build(name, part.args, self.shape, where="the likelihood")

    def networks(self, latent_dim: int, params_per_value: int):
        """(encoder, decoder): the user's own modules, or the named network family."""
        if self._encoder is not None:
            self.map_shape = getattr(self._encoder, "latent_shape", None)
            return self._encoder, self._decoder
        part = self.cfg.network
        enc_cls, dec_cls = NETWORKS.get(part.name)
        where = f"the network {part.name!r}"
        check_args(enc_cls, part.args, where, reserved=("cond_dim",))
        check_args(dec_cls, part.args, where, reserved=("cond_dim", "params_per_value"))
        cond = (self.num_classes or 0) + sum((self.cfg.covariates or {}).values())
        encoder = enc_cls(self.shape, cond_dim=cond, **part.args)
        self.map_shape = getattr(encoder, "latent_shape", None)
        return encoder, dec_cls(latent_dim, self.shape, params_per_value, cond_dim=cond, **part.args)

    @staticmethod
    def latent_shape(encoder: nn.Module, latent_dim: int) -> Tuple[int, ...]:
        """One example's latent: the encoder's ``latent_shape`` (C, h, w) for a latent map, else (latent_dim,)."""
        shape = getattr(encoder, "latent_shape", None)
        if shape is None:
            return (int(latent_dim),)
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise VaekitError(f"an encoder's latent_shape must be (C, h, w) of positive sizes, got {shape}")
        return shape

    def _spatial_part(self, registry, kind: str, shape: Tuple[int, ...]) -> None:
        """A one-line VaekitError when the configured posterior or prior cannot carry a latent map."""
        name = getattr(self.cfg, kind).name
        if len(shape) > 1 and "latent_shape" not in accepted_args(registry.get(name)):
            raise VaekitError(f"the {name} {kind} is defined on vector latents (B, D), and this network gives a "
                              f"latent map of shape {shape}; use --{kind} {getattr(ModelConfig(), kind).name}, or "
                              "a vector-latent network")

    def posterior(self, in_features: Optional[int], latent_dim: int, shape: Optional[Tuple[int, ...]] = None):
        self.used.add("posterior")
        part = self.cfg.posterior
        shape = shape or (latent_dim,)
        self._spatial_part(POSTERIORS, "posterior", shape)
        return POSTERIORS.build(part.name, part.args, in_features, latent_dim, where="the posterior",
                                latent_shape=shape if len(shape) > 1 else None)

    def prior(self, latent_dim: int, shape: Optional[Tuple[int, ...]] = None):
        self.used.add("prior")
        part = self.cfg.prior
        shape = shape or (latent_dim,)
        self._spatial_part(PRIORS, "prior", shape)
        return PRIORS.build(part.name, part.args, latent_dim, where="the prior", data_shape=self.shape,
                            conditional=self.num_classes is not None, latent_shape=shape if len(shape) > 1 else None)


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
    if parts.map_shape is not None and not model.spatial:
        raise VaekitError(f"the {name or cfg.structure.name} model reads vector latents (B, D), and this network "
                          f"gives a latent map of shape {tuple(parts.map_shape)}; use a vector-latent network "
                          "(drop --latent-channels) or a model built on the vae structure (vae, beta-vae, iwae, ...)")
    model.variant = name
    model.covariates = dict(cfg.covariates or {})
    attach_library(model, cfg)
    attach_discriminator(model, cfg, name)
    defaults = ModelConfig()
    for kind in ("posterior", "prior"):
        part = getattr(cfg, kind)
        if kind not in parts.used and (part.name != getattr(defaults, kind).name or part.args):
            raise VaekitError(f"the {cfg.structure.name} model builds its own {kind}, so --{kind} {part.name} "
                              f"(and model.{kind}.args) does not apply to it; drop them")
    return model


def attach_discriminator(model: Model, cfg: ModelConfig, name: Optional[str]) -> None:
    """``model.adversary``: the configured image discriminator, its parameters a group of their own
    (``Model.parameter_groups``); none where ``model.discriminator.name`` is ``none``."""
    part = cfg.discriminator
    if part.name == "none":
        if part.args:
            raise VaekitError("model.discriminator.args are set but there is no discriminator; add "
                              "--discriminator patchgan or drop them")
        return
    if type(model).parameter_groups is not Model.parameter_groups:
        raise VaekitError(f"the {name or cfg.structure.name} model splits its parameters into groups of its own "
                          f"({', '.join(model.parameter_groups())}), so it cannot take a {part.name} discriminator "
                          "as well; drop --discriminator")
    if not hasattr(model, "decoder"):
        raise VaekitError(f"the {name or cfg.structure.name} model has no image decoder for the {part.name} "
                          "discriminator to judge; drop --discriminator")
    model.adversary = DISCRIMINATORS.build(part.name, part.args, model.data_shape, where="the discriminator")
