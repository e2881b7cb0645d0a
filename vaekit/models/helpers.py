"""Small things every user of a model needs: eval mode, lazy layers, posterior moments."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch

from ..data.batching import iterate_batches
from ..data.types import TensorData


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no gradients for the block; the model's training flag is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def has_lazy(model: torch.nn.Module) -> bool:
    """True while a lazy layer (a user encoder's features) has not seen its first batch."""
    return any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in model.parameters())


def distribution_mean(q, samples: int = 64) -> torch.Tensor:
    """E[z] of a posterior; a Monte Carlo average where the mean has no closed form (flows)."""
    try:
        return q.mean
    except NotImplementedError:
        return q.sample((samples,)).mean(0)


def posterior_moments(model, data: TensorData, batch_size: int = 1024,
                      variance: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """E_q[z|x] (N, D) for every example, and Var_q[z|x] (N, D) if asked, on the CPU.

    A conditional model is given the labels; a plain one ignores them.
    """
    means, variances = [], []
    with evaluating(model):
        for x, y in iterate_batches(data, batch_size, device=model.device):
            q = model.encode(x, y if model.num_classes else None)
            means.append(distribution_mean(q).float().cpu())
            if variance:
                variances.append(q.variance.float().cpu())
    return torch.cat(means), (torch.cat(variances) if variance else None)
