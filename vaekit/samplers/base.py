"""The interface of a sampler: a density over the latent space fitted to a trained model's codes.

Ghosh, Sajjadi, Vergari, Black & Schoelkopf 2020, "From Variational to Deterministic
Autoencoders" (ICLR), sec. 4 ("ex-post density estimation"): a model whose prior fits the
aggregate posterior badly (RAE, WAE, a plain AE, an over-regularized VAE) gives better samples
when z is drawn from a density fitted, after training, to the codes of the training data.

A sampler is an ``nn.Module`` built as ``cls(dim, **args)``: its constructor makes every
parameter and buffer at its final shape, so its state is a plain ``state_dict`` saved as
safetensors next to a small JSON of its name and args (nothing is pickled). ``fit(codes, seed)``
fits it to codes (N, D); ``sample(n)`` draws (n, D) from the global torch RNG; ``log_prob(z)``
is the exact log-density (N,) where one exists; ``score(z)`` is what ``vaekit fit-sampler``
reports: ``log_prob``, or a lower bound on it (``score_name`` says which).
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Dict, Optional

import torch
from torch import nn

from ..errors import VaekitError


class Sampler(nn.Module):
    score_name = "log_likelihood"  # what ``score`` gives, per code, in nats
    needs_model = False            # True: ``use(model)`` must be called before sampling (the prior)
    # the args that set how many tensors (count_args) or how many numbers per tensor (width_args) the
    # state holds: a saved sampler's file bounds them before it is built (see app.sampling.load_sampler)
    count_args: tuple = ()
    width_args: tuple = ()

    def __init__(self, dim: int):
        super().__init__()
        if int(dim) < 1:
            raise VaekitError(f"a sampler needs codes of at least 1 dimension, got {dim}")
        self.dim = int(dim)

    def fit(self, codes: torch.Tensor, seed: int = 0) -> "Sampler":
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        """n draws (n, D), float32, on the CPU."""
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) (N,) in nats."""
        raise NotImplementedError(f"the {type(self).__name__} sampler has no exact log-density")

    def score(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) (N,), or the lower bound named by ``score_name``."""
        return self.log_prob(z)

    @torch.no_grad()
    def generate(self, model, n: int, c: Optional[torch.Tensor] = None, mean: bool = True) -> torch.Tensor:
        """n examples from ``model``: z from this sampler, then the mean of p(x|z) (or a draw)."""
        model.require("sample", "sampling")
        px = model.decode(self.sample(n).to(model.device), c)
        return px.mean if mean else px.sample()

    def check_codes(self, codes: torch.Tensor, at_least: int = 2, fewer: str = "") -> torch.Tensor:
        """codes as float64 (N, D), checked: the right width, finite, enough of them (``fewer``: how to
        need fewer, for the message)."""
        codes = torch.as_tensor(codes).detach().cpu().double()
        if codes.dim() != 2 or codes.shape[1] != self.dim:
            raise VaekitError(f"a sampler of {self.dim}-dimensional codes was given codes of shape "
                              f"{tuple(codes.shape)}; pass (N, {self.dim}) codes such as model.embed(x)")
        if codes.shape[0] < at_least:
            raise VaekitError(f"this sampler needs at least {at_least} codes to fit, got {codes.shape[0]} (one per "
                              f"training example); {fewer + ' or ' if fewer else ''}train the run on more data")
        if not torch.isfinite(codes).all():
            raise VaekitError("the codes contain NaN or infinite values; the model's encoder diverged")
        return codes


# -- shared by the samplers that train a network -----------------------------------------------
@contextlib.contextmanager
def seeded(seed: int):
    """Run the block with the global CPU RNG seeded by ``seed``; the caller's RNG state is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def check_positive(what: str, **values) -> None:
    for name, value in values.items():
        if not value > 0:
            raise VaekitError(f"the {what} sampler's {name} must be above 0, got {value!r}")


class Standardized(Sampler):
    """A sampler that models the standardized codes u = (z - shift) / scale (per dimension).

    log p(z) = log p(u) - sum_d log scale_d (change of variables); networks train better on
    codes of unit scale whatever the encoder's scale was.
    """

    def __init__(self, dim: int):
        super().__init__(dim)
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def standardize(self, codes: torch.Tensor) -> torch.Tensor:
        """Set shift/scale from float64 codes (N, D); return the standardized codes, float32."""
        self.shift.copy_(codes.mean(0).float())
        self.scale.copy_(codes.std(0).clamp(min=1e-6).float() if codes.shape[0] > 1 else torch.ones(self.dim))
        return self.to_unit(codes)

    def to_unit(self, z: torch.Tensor) -> torch.Tensor:
        return (torch.as_tensor(z).float() - self.shift) / self.scale

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        return u * self.scale + self.shift

    def log_scale(self) -> torch.Tensor:
        return self.scale.log().sum()


def train_network(module: nn.Module, loss: Callable[[torch.Tensor], torch.Tensor], data: torch.Tensor,
                  epochs: int, lr: float, batch: int) -> Dict[str, float]:
    """Adam on ``loss(batch) -> scalar`` over shuffled minibatches of ``data`` (N, D), ``epochs``
    passes; call it inside :func:`seeded`. Returns the last epoch's mean loss."""
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    last = math.nan
    for _ in range(int(epochs)):
        order = torch.randperm(data.shape[0])
        total, count = 0.0, 0
        for i in range(0, data.shape[0], int(batch)):
            x = data[order[i:i + int(batch)]]
            value = loss(x)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            total, count = total + value.item() * x.shape[0], count + x.shape[0]
        last = total / count
        if not math.isfinite(last):
            raise VaekitError(f"fitting the {type(module).__name__} sampler diverged (loss {last}); "
                              "lower its lr (--set lr=1e-4)")
    module.eval()
    return {"loss": last}


def reset(module: nn.Module) -> None:
    """Re-draw every layer's initial weights from the (seeded) global RNG."""
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()
