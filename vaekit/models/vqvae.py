"""VQ-VAE: discrete latent codes from a codebook learned by exponential moving averages.

van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation Learning".
Each example is encoded to N vectors z_e (B, N, D); each is replaced by its nearest of K
codebook vectors (z_q). The posterior is one-hot on those codes (deterministic), so with a
uniform prior the KL is N log K (sec. 3.1); after each epoch a categorical prior per
position is fitted to the codes of the training data, which makes ``sample`` work and the
KL -log p(codes).
"""
from __future__ import annotations

from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, OneHotCategorical

from ..errors import VaekitError
from ..objectives.base import LossOutput, Objective
from ..registry import MODELS, OBJECTIVES, keyword_defaults
from .base import Model
from ..contract.bounds import elbo_terms
from ..contract.output import Capabilities, Latent, ModelOutput


class EMACodebook(nn.Module):
    """K codes of dimension D, updated as moving averages of the vectors assigned to them
    (van den Oord et al. 2017, appendix A.1, with Laplace smoothing of the counts). All state
    is in buffers, so checkpoints and resume carry it. The codebook starts at randomly chosen
    encoder outputs of the first training batch, and a code whose moving-average count falls
    below ``restart`` times the mean count is moved to a random encoder output of the batch
    (the random restarts of Dhariwal et al. 2020, Jukebox), so no code stays dead."""

    def __init__(self, codes: int, dim: int, decay: float = 0.99, eps: float = 1e-5, restart: float = 0.03):
        super().__init__()
        self.decay, self.eps, self.restart = decay, eps, restart
        self.register_buffer("embedding", torch.randn(codes, dim))
        self.register_buffer("ema_count", torch.ones(codes))
        self.register_buffer("ema_weight", self.embedding.clone())
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def nearest(self, ze: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each vector: ze (M, D) -> (M,)."""
        d = ze.pow(2).sum(1, keepdim=True) - 2 * ze @ self.embedding.t() + self.embedding.pow(2).sum(1)  # (M, K)
        return d.argmin(1)

    @torch.no_grad()
    def update(self, ze: torch.Tensor, index: torch.Tensor) -> bool:
        """One EMA step from the vectors ze (M, D) assigned to codes ``index`` (M,); True if this
        call initialised the codebook instead (the assignments are then stale)."""
        k = self.embedding.shape[0]
        if not bool(self.started):
            pick = torch.randint(0, ze.shape[0], (k,), device=ze.device)
            self.embedding.copy_(ze[pick])
            self.ema_weight.copy_(ze[pick])
            self.started.fill_(True)
            return True
        onehot = F.one_hot(index, k).to(ze.dtype)                       # (M, K)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_weight.mul_(self.decay).add_(onehot.t() @ ze, alpha=1 - self.decay)
        n = self.ema_count.sum()
        count = (self.ema_count + self.eps) / (n + k * self.eps) * n    # Laplace smoothing
        self.embedding.copy_(self.ema_weight / count[:, None])
        dead = self.ema_count < self.restart * ze.shape[0] / k                # (K,)
        if self.restart > 0 and bool(dead.any()):
            pick = ze[torch.randint(0, ze.shape[0], (k,), device=ze.device)]
            self.embedding[dead] = pick[dead]
            self.ema_weight[dead] = pick[dead]
            self.ema_count[dead] = 1.0
        return False


@MODELS.register("vqvae")
class VQVAE(Model):
    """encoder -> linear head -> z_e (B, N, D) -> nearest codes z_q -> decoder (straight-through).

    ``latent_dim`` (the config's) is N, the code vectors per example; the space ``embed`` and
    ``decode`` use is the N * D flattened code vectors, so ``model.latent_dim`` is N * D.
    """

    capabilities = Capabilities(posterior_variance=False, latent_grid=False)
    objectives = ("vq",)  # the commitment term lives there; elbo or iwae would drop it
    deterministic_posterior = True
    missing_because = {"posterior_variance": "its posterior is a deterministic choice of codes, with no variance",
                       "latent_grid": "its latent space is a set of discrete codes, not a continuous plane"}

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, positions: int, data_shape,
                 num_classes: Optional[int] = None, *, codes: int = 512, code_dim: int = 64, decay: float = 0.99):
        super().__init__(positions * code_dim, data_shape, num_classes)
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.positions, self.codes, self.code_dim = positions, codes, code_dim
        out = getattr(encoder, "out_dim", None)
        self.head = nn.Linear(out, positions * code_dim) if out else nn.LazyLinear(positions * code_dim)
        self.codebook = EMACodebook(codes, code_dim, decay)
        self.register_buffer("prior_logits", torch.zeros(positions, codes))  # uniform until fitted

    @classmethod
    def from_config(cls, cfg, parts, **options) -> "VQVAE":
        """``options``: the constructor's ``codes``, ``code_dim`` and ``decay``; the network's size needs code_dim."""
        o = {**keyword_defaults(cls), **options}
        codes, code_dim, decay = o["codes"], o["code_dim"], o["decay"]
        if codes < 2 or code_dim < 1 or not 0 < decay < 1:
            raise VaekitError(f"vqvae needs codes >= 2, code_dim >= 1 and 0 < decay < 1; got codes={codes}, "
                              f"code_dim={code_dim}, decay={decay}")
        likelihood = parts.likelihood()
        encoder, decoder = parts.networks(cfg.latent_dim * int(code_dim), likelihood.params_per_value)
        return cls(encoder, decoder, likelihood, cfg.latent_dim, parts.shape, parts.num_classes, codes=int(codes),
                   code_dim=int(code_dim), decay=float(decay))

    # -- codes ----------------------------------------------------------------------------
    def encode_vectors(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z_e (B, N, D), the encoder's continuous output."""
        x = self.check_shape(x)
        h = self.encoder(x, self.condition(c, x.shape[0]))
        return self.head(h).view(x.shape[0], self.positions, self.code_dim)

    def quantize(self, ze: torch.Tensor):
        """(code indices (B, N), z_q (B, N, D)) for z_e (B, N, D)."""
        index = self.codebook.nearest(ze.reshape(-1, self.code_dim)).view(ze.shape[:2])
        return index, self.codebook.embedding[index]

    def _prior(self, batch: int) -> Independent:
        return Independent(OneHotCategorical(logits=self.prior_logits.expand(batch, -1, -1), validate_args=False), 1)

    # -- the contract ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> ModelOutput:
        ze = self.encode_vectors(x, c)
        index, zq = self.quantize(ze)
        if self.training and self.codebook.update(ze.detach().reshape(-1, self.code_dim), index.reshape(-1)):
            index, zq = self.quantize(ze)  # the first batch initialised the codebook
        z_st = ze + (zq - ze).detach()                                  # straight-through gradient
        onehot = F.one_hot(index, self.codes).to(ze.dtype)              # (B, N, K)
        q = Independent(OneHotCategorical(probs=onehot, validate_args=False), 1)
        commitment = (ze - zq.detach()).pow(2).flatten(1).sum(1)        # (B,)
        usage = onehot.mean((0, 1))
        perplexity = torch.exp(-(usage * torch.log(usage + 1e-10)).sum())
        return ModelOutput(self.decode(z_st.flatten(1), c), [Latent(q, onehot, self._prior(x.shape[0]))],
                           {"commitment": commitment, "perplexity": perplexity})

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, c: Optional[torch.Tensor] = None, mean: bool = True) -> torch.Tensor:
        """Decode the chosen code vectors (the posterior is deterministic, so ``mean`` changes nothing)."""
        return self.decode(self.embed(x, c), c).mean

    def encode(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        """The posterior over codes: one-hot on the nearest code at each of the N positions."""
        index, _ = self.quantize(self.encode_vectors(x, c))
        return Independent(OneHotCategorical(probs=F.one_hot(index, self.codes).float(), validate_args=False), 1)

    def embed(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The chosen code vectors, flattened: (B, N * D)."""
        return self.quantize(self.encode_vectors(x, c))[1].flatten(1)

    def decode(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        """p(x | z) for code vectors z (B, N * D), such as ``model.embed(x)``."""
        z = self.check_latent(z, "code vectors such as model.embed(x)")
        return self.likelihood(self.decoder(z, self.condition(c, z.shape[0])))

    def prior_sample(self, n: int, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        onehot = self._prior(n).sample()                                # (n, N, K)
        return (onehot @ self.codebook.embedding).flatten(1)            # (n, N * D)

    @torch.no_grad()
    def fit_prior(self, batches: Iterator) -> None:
        """A categorical prior per position: code counts over the training data, plus one
        (so an unseen code keeps a small probability)."""
        counts = torch.ones_like(self.prior_logits)
        for x, y in batches:
            index, _ = self.quantize(self.encode_vectors(x, y if self.conditioned else None))
            counts += F.one_hot(index, self.codes).sum(0).to(counts.dtype)
        self.prior_logits.copy_(torch.log(counts / counts.sum(1, keepdim=True)))


@OBJECTIVES.register("vq")
class VQObjective(Objective):
    """loss = -log p(x|z_q) + commitment * ||z_e - sg[z_q]||^2 (van den Oord et al. 2017, eq. 3,
    where the weight is called beta; the codebook term is replaced by the EMA update). The KL
    (-log p(codes)) does not depend on the trained parameters and is reported, not minimised;
    it grows as the model uses more codes, so early stopping follows the reconstruction term."""

    monitor = ("recon", "min")

    def __init__(self, commitment: float = 0.25):
        if commitment < 0:
            raise VaekitError(f"the vq objective's commitment weight must be 0 or more, got {commitment}")
        self.commitment = float(commitment)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        out = model(x, c)
        if "commitment" not in out.extras:
            raise VaekitError("the vq objective needs a vector-quantised model: use --model vqvae")
        t = elbo_terms(out, x)
        commitment = out.extras["commitment"].mean()
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), "commitment": commitment,
                 "perplexity": out.extras["perplexity"]}
        return LossOutput({"main": t.recon.mean() + self.commitment * commitment}, terms)
