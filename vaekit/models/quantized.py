"""What every vector-quantised autoencoder shares (vqvae, vqgan, fsq, rvq), and their objective.

encoder -> z_e -> quantizer (vaekit/models/quantizers.py) -> z_q -> decoder. Two layouts of z_e:

- a vector latent: a linear head maps the encoder's features to N code vectors (B, N, D) (``latent_dim``
  is N); the space ``embed`` and ``decode`` use is the N * D flattened code vectors;
- a latent map, as in the VQ-VAE paper's images (van den Oord et al. 2017, sec. 4.1) and VQGAN (Esser et
  al. 2021): an encoder with ``latent_shape`` (C, h, w) (``--network resnet --latent-channels C``) gives
  a map whose first C channels (its "means") are quantized at each of the h * w positions against codes
  of dimension D = C; ``embed`` gives the (C, h, w) map of chosen codes.

The posterior is one-hot on the chosen codes (deterministic), so with a uniform prior the KL is
N S log K (van den Oord et al. 2017, sec. 3.1, S indices per position); after each epoch a categorical
prior per position and stage is fitted to the codes of the training data, which makes ``sample`` work
and the KL -log p(codes).
"""
from __future__ import annotations

from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, OneHotCategorical

from ..contract.bounds import elbo_terms
from ..contract.output import Capabilities, Latent, ModelOutput
from ..errors import VaekitError
from ..objectives.base import LossOutput, Objective
from ..registry import OBJECTIVES, keyword_defaults
from .base import Model
from .quantizers import codebook_stats


class QuantizedModel(Model):
    """A structure built on a quantizer; a subclass says which in :meth:`make_quantizer` and which code
    dimension it needs in :meth:`code_dim_of` (None: the network's, or the ``code_dim`` option)."""

    capabilities = Capabilities(posterior_variance=False, latent_grid=False)
    objectives = ("vq",)  # the commitment and codebook terms live there; elbo or iwae would drop them
    deterministic_posterior = True
    missing_because = {"posterior_variance": "its posterior is a deterministic choice of codes, with no variance",
                       "latent_grid": "its latent space is a set of discrete codes, not a continuous plane"}

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, quantizer: nn.Module,
                 positions: int, data_shape, num_classes: Optional[int] = None):
        self.map_shape = getattr(encoder, "latent_shape", None)
        if self.map_shape is not None:
            positions = self.map_shape[1] * self.map_shape[2]
            super().__init__(0, data_shape, num_classes, latent_shape=self.map_shape)
        else:
            super().__init__(positions * quantizer.dim, data_shape, num_classes)
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.positions, self.code_dim, self.codes = positions, quantizer.dim, quantizer.codes
        self.stages = getattr(quantizer, "stages", 1)
        if self.map_shape is None:
            out = getattr(encoder, "out_dim", None)
            dims = positions * quantizer.dim
            self.head = nn.Linear(out, dims) if out else nn.LazyLinear(dims)
        self.codebook = quantizer
        # a categorical prior per position and stage; uniform until fitted
        self.register_buffer("prior_logits", torch.zeros(positions * self.stages, quantizer.codes))

    # -- building -------------------------------------------------------------------------
    @staticmethod
    def code_dim_of(options: dict) -> Optional[int]:
        """The code dimension the quantizer needs, or None where the ``code_dim`` option or the map gives it."""
        return None

    @classmethod
    def make_quantizer(cls, dim: int, options: dict) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def from_config(cls, cfg, parts, **options) -> "QuantizedModel":
        """``options``: the constructor's keywords; the network's size needs the code dimension."""
        o = {**keyword_defaults(cls), **options}
        fixed = cls.code_dim_of(o)
        dim = fixed or int(o.get("code_dim") or 1)
        likelihood = parts.likelihood()
        encoder, decoder = parts.networks(cfg.latent_dim * dim, likelihood.params_per_value)
        shape = parts.latent_shape(encoder, cfg.latent_dim)
        name = cfg.variant or cfg.structure.name
        if len(shape) > 1:
            channels = shape[0]
            if fixed is not None and fixed != channels:
                raise VaekitError(f"the {name} model quantizes each position's {channels} latent channels, but "
                                  f"its codes have {fixed} dimensions; set --latent-channels {fixed}")
            if fixed is None and "code_dim" in options and int(options["code_dim"]) != channels:
                raise VaekitError(f"on a latent map the code dimension is the map's channels ({channels}); set "
                                  f"--latent-channels {options['code_dim']} instead of code_dim")
            dim = channels
        return cls(encoder, decoder, likelihood, cfg.latent_dim, parts.shape, parts.num_classes,
                   quantizer=cls.make_quantizer(dim, o))

    # -- codes ----------------------------------------------------------------------------
    def encode_vectors(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z_e (B, N, D), the encoder's continuous output: N code vectors, or the map's N = h * w positions."""
        x = self.check_shape(x)
        h = self.encoder(x, self.condition(c, x.shape[0]))
        if self.map_shape is None:
            return self.head(h).view(x.shape[0], self.positions, self.code_dim)
        return h[:, :self.code_dim].flatten(2).transpose(1, 2)      # the moment map's means: (B, h * w, C)

    def to_latent(self, zq: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, N, D) -> the latent ``decode`` reads: (B, N * D), or the map (B, C, h, w)."""
        if self.map_shape is None:
            return zq.flatten(1)
        return zq.transpose(1, 2).reshape(zq.shape[0], *self.map_shape)

    def quantize(self, ze: torch.Tensor):
        """(code indices (B, N * S), z_q (B, N, D)) for z_e (B, N, D), with no update."""
        was = self.codebook.training
        self.codebook.eval()
        try:
            q = self.codebook(ze.reshape(-1, self.code_dim))
        finally:
            self.codebook.train(was)
        return q.index.reshape(ze.shape[0], -1), q.z.view(ze.shape)

    def _prior(self, batch: int) -> Independent:
        return Independent(OneHotCategorical(logits=self.prior_logits.expand(batch, -1, -1), validate_args=False), 1)

    def _posterior(self, index: torch.Tensor) -> Independent:
        return Independent(OneHotCategorical(probs=F.one_hot(index, self.codes).float(), validate_args=False), 1)

    # -- the contract ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> ModelOutput:
        ze = self.encode_vectors(x, c)
        b = ze.shape[0]
        q = self.codebook(ze.reshape(-1, self.code_dim))
        index = q.index.reshape(b, -1)                                  # (B, N * S)
        onehot = F.one_hot(index, self.codes).to(ze.dtype)              # (B, N * S, K)
        posterior = Independent(OneHotCategorical(probs=onehot, validate_args=False), 1)
        usage, perplexity = codebook_stats(index, self.codes)
        extras = {k: v.view(b, -1).sum(1) for k, v in q.losses.items()}  # per example (B,)
        extras.update(perplexity=perplexity.to(ze.dtype), usage=usage.to(ze.dtype))
        z = self.to_latent(q.z.view(ze.shape))
        return ModelOutput(self.decode(z, c), [Latent(posterior, onehot, self._prior(b))], extras)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, c: Optional[torch.Tensor] = None, mean: bool = True) -> torch.Tensor:
        """Decode the chosen code vectors (the posterior is deterministic, so ``mean`` changes nothing)."""
        return self.decode(self.embed(x, c), c).mean

    def encode(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        """The posterior over codes: one-hot on the chosen code at each of the N positions (and S stages)."""
        return self._posterior(self.quantize(self.encode_vectors(x, c))[0])

    def codes_of(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The code indices (B, N * S) of x."""
        return self.quantize(self.encode_vectors(x, c))[0]

    def embed(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The chosen code vectors: (B, N * D) flattened, or the (B, C, h, w) map."""
        return self.to_latent(self.quantize(self.encode_vectors(x, c))[1])

    def decode(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        """p(x | z) for code vectors z such as ``model.embed(x)``."""
        z = self.check_latent(z, "code vectors such as model.embed(x)")
        return self.likelihood(self.decoder(z, self.condition(c, z.shape[0])))

    def prior_sample(self, n: int, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        index = self._prior(n).sample().argmax(-1)                     # (n, N * S)
        zq = self.codebook.lookup(index.reshape(-1, self.stages))       # (n * N, D)
        return self.to_latent(zq.view(n, self.positions, self.code_dim)).flatten(1)

    @torch.no_grad()
    def fit_prior(self, batches: Iterator) -> None:
        """A categorical prior per position (and stage): code counts over the training data, plus one
        (so an unseen code keeps a small probability)."""
        counts = torch.ones_like(self.prior_logits)
        for x, y in batches:
            index = self.codes_of(x, y if self.conditioned else None)
            counts += F.one_hot(index, self.codes).sum(0).to(counts.dtype)
        self.prior_logits.copy_(torch.log(counts / counts.sum(1, keepdim=True)))


@OBJECTIVES.register("vq")
class VQObjective(Objective):
    """loss = -log p(x|z_q) + codebook + commitment * ||z_e - sg[z_q]||^2 (van den Oord et al. 2017, eq. 3,
    where the weight is called beta; Esser et al. 2021, eq. 4). The codebook term ||sg[z_e] - z_q||^2 is
    there for a codebook learned by gradient (vqgan); an EMA codebook (vqvae, rvq) replaces it by its update,
    and FSQ has neither term. The KL (-log p(codes)) does not depend on the trained parameters and is
    reported, not minimised; it grows as the model uses more codes, so early stopping follows the
    reconstruction term."""

    monitor = ("recon", "min")

    def __init__(self, commitment: float = 0.25):
        if commitment < 0:
            raise VaekitError(f"the vq objective's commitment weight must be 0 or more, got {commitment}")
        self.commitment = float(commitment)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, c)
        if "perplexity" not in out.extras:
            raise VaekitError("the vq objective needs a vector-quantised model: use --model vqvae, vqgan, fsq or rvq")
        t = elbo_terms(out, x)
        loss = t.recon.mean()
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(),
                 "perplexity": out.extras["perplexity"], "usage": out.extras["usage"]}
        if "commitment" in out.extras:
            terms["commitment"] = out.extras["commitment"].mean()
            loss = loss + self.commitment * terms["commitment"]
        if "codebook" in out.extras:
            terms["codebook"] = out.extras["codebook"].mean()
            loss = loss + terms["codebook"]
        return LossOutput({"main": loss}, terms, out)  # out: for an adversarial term (--discriminator)
