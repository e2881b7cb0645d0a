"""The model's own prior as a sampler (``--sampler prior``), to compare fitted samplers with."""
from __future__ import annotations

import torch

from ..errors import VaekitError
from ..registry import SAMPLERS
from .base import Sampler


@SAMPLERS.register("prior")
class PriorSampler(Sampler):
    """z ~ the trained model's prior p(z) (``model.prior_sample``); nothing is fitted. ``log_prob``
    is the prior's density where the model has a ``prior()`` over one latent layer (a VAE's
    N(0, I), a VampPrior, an AE's fitted Gaussian)."""

    needs_model = True

    def __init__(self, dim: int):
        super().__init__(dim)
        self._model = [None]  # in a list: the model is not a submodule, so it is never saved with the sampler

    def use(self, model) -> "PriorSampler":
        if model.latent_dim != self.dim:
            raise VaekitError(f"this prior sampler is for {self.dim}-dimensional codes, the model's are "
                              f"{model.latent_dim}-dimensional")
        self._model[0] = model
        return self

    @property
    def model(self):
        if self._model[0] is None:
            raise VaekitError("the prior sampler samples from a model's prior: call sampler.use(model) first")
        return self._model[0]

    def fit(self, codes: torch.Tensor, seed: int = 0) -> "PriorSampler":
        self.check_codes(codes, at_least=0)
        return self

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.model.prior_sample(int(n)).float().cpu()

    @torch.no_grad()
    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        prior = getattr(self.model, "prior", None)
        p = prior() if callable(prior) else None
        if p is None or tuple(p.batch_shape) != () or tuple(p.event_shape) != (self.dim,):
            raise NotImplementedError(f"the {self.model.name} model's prior has no density over its codes")
        return p.log_prob(torch.as_tensor(z).to(self.model.device)).float().cpu()
