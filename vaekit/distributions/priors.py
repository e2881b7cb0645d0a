"""Priors p(z): modules whose ``forward()`` returns a Distribution over z."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from ..errors import VaekitError
from ..registry import PRIORS


@PRIORS.register("normal")
class StandardNormal(nn.Module):
    """p(z) = N(0, I) over a vector (D,) or a latent map ``latent_shape`` (C, h, w). Kept as buffers so it
    follows the model to the GPU."""

    def __init__(self, latent_dim: int, latent_shape: Optional[Sequence[int]] = None):
        super().__init__()
        self.latent_dim = latent_dim
        shape = tuple(latent_shape) if latent_shape else (latent_dim,)
        self.register_buffer("loc", torch.zeros(shape), persistent=False)
        self.register_buffer("scale", torch.ones(shape), persistent=False)

    def forward(self) -> Independent:
        return Independent(Normal(self.loc, self.scale), self.loc.dim())


@PRIORS.register("vamp")
class VampPrior(nn.Module):
    """p(z) = (1/K) sum_k q(z | u_k): the posterior at K learned pseudo-inputs u_k.

    Tomczak & Welling 2018, "VAE with a VampPrior", eq. 9. The pseudo-inputs live in data
    space and pass through the model's own encoder, so the prior learns with it; the KL has no
    closed form and is estimated at the posterior sample (log q(z) - log p(z)). Pseudo-inputs
    start at N(0.05, 0.01) and, for images, are kept in [0, 1] by a hard tanh, as in the
    paper's code. ``bind(model)`` (called by the model) gives the prior the encoder, so the prior
    has the posterior's event shape, a latent map (C, h, w) included (``latent_shape`` is not needed).
    """

    def __init__(self, latent_dim: int, data_shape: Sequence[int], conditional: bool = False,
                 components: int = 500, latent_shape: Optional[Sequence[int]] = None):
        super().__init__()
        if conditional:
            raise VaekitError("the vamp prior encodes pseudo-inputs without labels, so it does not combine "
                              "with --conditional; drop one of them")
        if int(components) < 1:
            raise VaekitError(f"the vamp prior needs at least 1 component, got components={components}")
        self.latent_dim = latent_dim
        self.bounded = len(data_shape) == 3  # images live in [0, 1]
        self.pseudo_inputs = nn.Parameter(torch.randn(int(components), *data_shape) * 0.01 + 0.05)
        self.__dict__["_owner"] = None  # the model; a plain attribute, so no module cycle

    def bind(self, model) -> None:
        self.__dict__["_owner"] = model

    def inputs(self) -> torch.Tensor:
        """The pseudo-inputs u (K, *data_shape) as the encoder sees them."""
        u = self.pseudo_inputs
        return torch.nn.functional.hardtanh(u, 0.0, 1.0) if self.bounded else u

    def forward(self) -> MixtureSameFamily:
        if self._owner is None:
            raise RuntimeError("VampPrior.bind(model) must be called before the prior is used")
        q = self._owner.encode(self.inputs())                      # batch (K,), event (D,) or (C, h, w)
        mix = Categorical(logits=torch.zeros(q.batch_shape, device=self.pseudo_inputs.device))
        return MixtureSameFamily(mix, q)                           # batch (), event (D,)
