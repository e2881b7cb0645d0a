"""What every model structure shares: conditioning, shape checks, parameter groups, capabilities.

A structure (registered in ``MODELS``) subclasses :class:`Model` and implements
``forward``, ``encode`` and ``decode``; the rest has sensible defaults it may override.
"""
from __future__ import annotations

import math
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution

from ..errors import VaekitError
from ..contract.output import Capabilities, ModelOutput


class Model(nn.Module):
    """Base of every structure. ``c`` below is an integer class label (B,) or None; a
    conditional model turns it into the one-hot condition its networks see."""

    capabilities = Capabilities()
    # why a capability is missing, said in one line to the user: {"latent_grid": "..."}
    missing_because: Dict[str, str] = {}
    deterministic_posterior = False  # q(z|x) puts all its mass on one z: importance sampling adds nothing
    # the objectives this structure can train with; None: any objective that gives every group a loss
    objectives: Optional[Tuple[str, ...]] = None
    # categorical covariates {name: number of categories}, fed one-hot beside the label (set by build_model)
    covariates: Dict[str, int] = {}

    def __init__(self, latent_dim: int, data_shape: Sequence[int], num_classes: Optional[int] = None,
                 latent_shape: Optional[Sequence[int]] = None):
        super().__init__()
        # One example's latent: (D,) for a vector, (C, h, w) for a latent map (Rombach et al. 2022).
        # latent_dim is always the number of latent values, D or C * h * w: the width of a flattened code.
        self.latent_shape = tuple(int(s) for s in latent_shape) if latent_shape else (int(latent_dim),)
        self.latent_dim = math.prod(self.latent_shape)
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes
        self.variant: Optional[str] = None  # the zoo variant it was built as (build_model's name), if any
        # an image discriminator of its own parameter group (model.discriminator; build_model attaches it)
        self.adversary: Optional[nn.Module] = None

    # -- the contract ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> ModelOutput:
        raise NotImplementedError

    def encode(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        """q(z given x) of the layer a user looks at: batch (B,), event ``latent_shape``."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> Distribution:
        """p(x given z) for a point ``z`` of the space :meth:`encode` maps to; by default the
        structure's ``decoder`` network gives the parameters of its ``likelihood``."""
        z = self.check_latent(z)
        return self.likelihood(self.decoder(z, self.condition(c, z.shape[0])))

    def prior_sample(self, n: int, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """n points of the space :meth:`decode` reads, drawn from the prior (by default ``prior()``)."""
        return self.prior().sample((n,)).to(self.device)

    def parameter_groups(self) -> Dict[str, List[nn.Parameter]]:
        """Parameters per optimizer, in the order they are stepped; one group by default, and the
        ``adversary``'s own group ``discriminator`` where the model has one."""
        if self.adversary is None:
            return {"main": list(self.parameters())}
        own = {id(p) for p in self.adversary.parameters()}
        return {"main": [p for p in self.parameters() if id(p) not in own],
                "discriminator": list(self.adversary.parameters())}

    def fit_data(self, batches: Iterator) -> None:
        """Fix statistics of the training data before training starts (scVI's library-size prior); no-op here."""

    def fit_prior(self, batches: Iterator) -> None:
        """Fit statistics of the training data after each epoch (a VQ-VAE's code prior); no-op here."""

    # -- what users call ------------------------------------------------------------------
    def embed(self, x: torch.Tensor, c: Optional[torch.Tensor] = None,
              covariates: Optional[Dict[str, int]] = None) -> torch.Tensor:
        """One latent point per example (B, *latent_shape): the posterior mean. ``covariates``
        ({"batch": 0}) encodes every example as if it had those covariate codes: batch-corrected codes."""
        return distribution_mean(self.encode(x, self.with_covariates(c, covariates, x.shape[0])))

    @torch.no_grad()
    def sample(self, n: int, c: Optional[torch.Tensor] = None, mean: bool = True) -> torch.Tensor:
        """Generate n examples: z from the prior, then the mean of p(x|z) (or a draw if not ``mean``)."""
        self.require("sample", "sampling")
        px = self.decode(self.prior_sample(n, c), c)
        return px.mean if mean else px.sample()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, c: Optional[torch.Tensor] = None, mean: bool = True,
                    covariates: Optional[Dict[str, int]] = None) -> torch.Tensor:
        """Decode the posterior mean of each x (or a posterior sample if not ``mean``). ``covariates``
        ({"batch": 0}): encode with the examples' own ``c``, decode with those codes instead, the
        counterfactual decode (scVI's ``transform_batch``, Lopez et al. 2018)."""
        z = self.embed(x, c) if mean else self.encode(x, c).sample()
        return self.decode(z, self.with_covariates(c, covariates, x.shape[0])).mean

    # -- helpers --------------------------------------------------------------------------
    @property
    def spatial(self) -> bool:
        """True for a latent map (C, h, w), False for a vector latent."""
        return len(self.latent_shape) > 1

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def name(self) -> str:
        """The zoo variant this model is (``vaekit models``), or its structure's class name."""
        return self.variant or type(self).__name__

    @property
    def conditional(self) -> bool:
        """True when the model is conditioned on a class label (a CVAE)."""
        return bool(self.num_classes)

    @property
    def conditioned(self) -> bool:
        """True when the networks see a condition: the class label (a CVAE) or covariates, or both."""
        return bool(self.num_classes or self.covariates)

    def why_not(self, capability: str) -> Optional[str]:
        """None if the model can do ``capability``, else the one-line reason.

        The structure declares what it cannot do (``capabilities``, ``missing_because``); so may any
        of its parts, by a ``missing_capabilities`` dict (a posterior on the sphere has no grid of
        latent values to decode).
        """
        if not getattr(self.capabilities, capability):
            return self.missing_because.get(capability, f"it cannot {capability.replace('_', ' ')}")
        for part in self.modules():   # the parts, also inside lists of parts (a JointVAE's posteriors)
            why = getattr(part, "missing_capabilities", {}).get(capability)
            if why:
                return why
        return None

    def can(self, capability: str) -> bool:
        return self.why_not(capability) is None

    def require(self, capability: str, what: str) -> None:
        """A one-line VaekitError when ``what`` needs a capability this model lacks."""
        why = self.why_not(capability)
        if why:
            raise VaekitError(f"{what} does not apply to the {self.name} model: {why}")

    def condition(self, c: Optional[torch.Tensor], n: int) -> Optional[torch.Tensor]:
        """The one-hot condition (n, K) the networks see, None for a plain model: the label's one-hot (a CVAE,
        Sohn et al. 2015), then each covariate's (scVI's batch, Lopez et al. 2018), concatenated. With
        covariates ``c`` is packed (n, 1 + m), the label first (:func:`vaekit.data.covariates.pack`)."""
        if not self.conditioned:
            return None
        if c is None and not self.covariates:
            raise VaekitError(f"this is a conditional VAE over {self.num_classes} classes: pass the class labels "
                              "(c=... in Python, --label on the command line)")
        if c is None:
            raise VaekitError(f"this model is conditioned on the covariates {', '.join(self.covariates)}: pass c, "
                              "the labels and covariate codes packed (data.c), or covariates={...} to embed and "
                              "reconstruct")
        c = torch.as_tensor(c, device=self.device).long()
        parts = []
        if self.covariates:
            if c.dim() < 2 and c.numel() != 1 + len(self.covariates) or c.dim() == 2 and c.shape[1] != 1 + len(
                    self.covariates) or c.dim() > 2:
                raise VaekitError(f"c has shape {tuple(c.shape)}, but this model reads the label and its "
                                  f"{len(self.covariates)} covariate(s) {', '.join(self.covariates)} packed, "
                                  f"(B, {1 + len(self.covariates)}) (data.c); on the command line choose the "
                                  "covariates with --covariate-value NAME=CATEGORY")
            c = c.reshape(-1, 1 + len(self.covariates))
            c = c.expand(n, -1) if c.shape[0] == 1 and n > 1 else c
            label = c[:, 0]
            parts = [(c[:, 1 + j], k, f"covariate '{name}'") for j, (name, k) in enumerate(self.covariates.items())]
        else:
            label = c.reshape(-1)
            label = label.expand(n) if label.numel() == 1 and n > 1 else label
        if self.num_classes:
            parts.insert(0, (label, self.num_classes, "label"))
        return torch.cat([_one_hot(*part) for part in parts], 1)

    def with_covariates(self, c: Optional[torch.Tensor], covariates: Optional[Dict[str, int]],
                        n: int) -> Optional[torch.Tensor]:
        """``c`` (packed, or None) with the covariates named in ``covariates`` set to those codes for all n
        examples: ``model.embed(x, data.c, covariates={"batch": 0})``."""
        if not covariates:
            return c
        unknown = sorted(set(covariates) - set(self.covariates))
        if unknown:
            raise VaekitError(f"covariates={unknown} are not this model's; it knows "
                              f"{sorted(self.covariates) or 'no covariates (train with --covariate)'}")
        if c is None:
            missing = sorted(set(self.covariates) - set(covariates))
            if missing or self.num_classes:
                raise VaekitError(f"pass c (data.c) with covariates=: they set {sorted(covariates)}, and the model "
                                  f"also reads {missing or 'the label'}")
            c = torch.full((n, 1 + len(self.covariates)), -1, dtype=torch.long)
        c = torch.as_tensor(c, device=self.device).long().reshape(-1, 1 + len(self.covariates)).expand(n, -1).clone()
        for j, name in enumerate(self.covariates):
            if name in covariates:
                c[:, 1 + j] = int(covariates[name])
        return c

    def check_shape(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.data_shape:
            raise VaekitError(f"data has examples of shape {tuple(x.shape[1:])} but the model was built for "
                              f"{self.data_shape}; pass data of the training data's shape")
        return x.to(self.device)

    def check_latent(self, z: torch.Tensor, what: str = "latent points such as model.embed(x)") -> torch.Tensor:
        """z must be (B, *latent_shape), the points :meth:`decode` reads; a latent map may also come flattened,
        (B, latent_dim) (a sampler's draws, a path between two codes), and is given back as (B, C, h, w)."""
        z = torch.as_tensor(z)
        if z.dim() == 2 and z.shape[1] == self.latent_dim:
            return z.reshape(z.shape[0], *self.latent_shape).to(self.device)
        if tuple(z.shape[1:]) != self.latent_shape:
            shape = ", ".join(map(str, self.latent_shape))
            flat = f" or (B, {self.latent_dim}) flattened" if self.spatial else ""
            raise VaekitError(f"decode takes {what}, of shape (B, {shape}){flat}; got shape {tuple(z.shape)}")
        return z.to(self.device)

    def check_data(self, x: torch.Tensor, name: str) -> None:
        """A VaekitError if the likelihood cannot model ``x`` (values outside its support)."""
        self.likelihood.check_data(x, name)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _one_hot(codes: torch.Tensor, k: int, what: str) -> torch.Tensor:
    """One-hot (n, k) of integer codes, each checked to be in 0..k-1; ``what``: "label" or "covariate 'batch'"."""
    if int(codes.min()) < 0 or int(codes.max()) >= k:
        bad = int(codes.max()) if int(codes.max()) >= 0 else int(codes.min())
        known = "labels" if what == "label" else "codes"
        raise VaekitError(f"{what} {bad} is out of range; this model knows {known} 0..{k - 1}")
    return F.one_hot(codes, k).float()


def distribution_mean(q: Distribution, samples: int = 64) -> torch.Tensor:
    """E[z] of a posterior; a Monte Carlo average where the mean has no closed form (flows)."""
    try:
        return q.mean
    except NotImplementedError:
        return q.sample((samples,)).mean(0)
