"""What ``state.pt`` holds: the loop position, the weights (raw, and their average with --ema), every
optimizer, the random states of every rank and the epoch's running sums, so that the file alone is an
exact resume point."""
from __future__ import annotations

from typing import Dict, Tuple

import torch

from ..errors import VaekitError
from .distributed import Dist
from .ema import WeightAverage
from .loop_state import EpochSums, LoopState


def capture(loop: LoopState, sums: EpochSums, shuffle: torch.Tensor, model: torch.nn.Module,
            optimizers: Dict[str, torch.optim.Optimizer], dist: Dist, average: WeightAverage) -> dict:
    """The state to save. ``shuffle`` is the shuffle generator's state at the start of the epoch in
    progress when taken mid-epoch, so resume draws the same permutation and skips ``loop.batch``
    batches. Under torchrun every rank must call it (it gathers their random states and sums)."""
    return {
        **loop.to_state(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        # the weights (and buffers such as EMA codebooks) again, so state.pt alone is a resume point
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **({"ema": average.state()} if average.on else {}),  # the averaged weights (train/ema.py)
        "torch_rng": torch.get_rng_state(),
        "shuffle_rng": shuffle,
        "rank_rngs": dist.gather_rng(),  # every rank's, under torchrun (None for one process)
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "sums": dist.gather(sums.saved()),
    }


def restore(state: dict, model: torch.nn.Module, optimizers: Dict[str, torch.optim.Optimizer],
            shuffle: torch.Generator, dist: Dist, seed: int, device, where,
            average: WeightAverage) -> Tuple[LoopState, EpochSums]:
    """Load ``state`` (read from ``where``) into the model, the optimizers, the weight average, the random
    generators and ``shuffle``; returns the loop position and this rank's running sums."""
    try:
        average.restore(state.get("ema"))
        return _restore(state, model, optimizers, shuffle, dist, seed, device)
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise VaekitError(f"training state {where} does not fit this run ({e}); "
                          "start a new run with another --out") from None


def _restore(state, model, optimizers, shuffle, dist, seed, device) -> Tuple[LoopState, EpochSums]:
    model.load_state_dict({k: v.to(device) for k, v in state["model"].items()})
    saved = state["optimizers"] if "optimizers" in state else {"main": state["optimizer"]}  # vaekit 0.1
    if set(saved) != set(optimizers):
        raise KeyError(f"optimizers {sorted(saved)} saved, {sorted(optimizers)} expected")
    for name, opt in optimizers.items():
        opt.load_state_dict(saved[name])
    loop = LoopState.from_state(state)
    torch.set_rng_state(state["torch_rng"])
    dist.restore_rng(state.get("rank_rngs"), seed, loop.epoch)
    shuffle.set_state(state["shuffle_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return loop, EpochSums.restored(state.get("sums"), dist.rank, dist.world, device)
