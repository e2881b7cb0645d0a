"""FLOP counts and compute rates the benchmarks compare throughput against.

A training step's FLOPs are taken as 3x the forward's (the backward computes a gradient for the
input and one for the weights, each costing about a forward: the usual convention, e.g. Kaplan
et al. 2020, "Scaling laws for neural language models", section 2.1). Forward FLOPs are counted by
torch.utils.flop_counter.FlopCounterMode (matrix products and convolutions; elementwise ops are
not counted).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, List, Tuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

COUNTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def _median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_rate(shape: Tuple[int, int, int], repeats: int = 20) -> float:
    """GFLOP/s of torch.mm at (m, k) x (k, n): the median of ``repeats`` timed products."""
    m, k, n = shape
    a, b = torch.randn(m, k), torch.randn(k, n)
    return 2 * m * k * n / _median_seconds(lambda: a @ b, repeats, warmup=3) / 1e9


def softplus_seconds(values: int, chunk: int = 1 << 21, repeats: int = 10) -> float:
    """Seconds torch's softplus takes over ``values`` float32 numbers at its rate on chunks of
    ``chunk`` (the importance-sampling chunk of 2^21 data values; a small call would time its
    fixed overhead instead): the Bernoulli log-density's own cost."""
    x = torch.randn(chunk)
    return _median_seconds(lambda: torch.nn.functional.softplus(x), repeats) * values / chunk


def forward_flops(forward: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-add) of the matrix products and convolutions ``forward()`` runs."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward()
    return int(counter.get_total_flops())


def layer_inputs(model: nn.Module, forward: Callable[[], object]) -> List[Tuple[nn.Module, torch.Size]]:
    """Each Linear/Conv2d/ConvTranspose2d of ``model`` with the input shape ``forward()`` gives it."""
    seen, hooks = [], []
    for module in model.modules():
        if isinstance(module, COUNTED):
            hooks.append(module.register_forward_pre_hook(lambda m, args: seen.append((m, args[0].shape))))
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in hooks:
            h.remove()
    return seen


def layers_rate(model: nn.Module, forward: Callable[[], object], repeats: int = 3) -> dict:
    """The net's own layers timed one at a time (forward + backward, fp32, at the shapes
    ``forward()`` gives them): their FLOPs over their summed median seconds. The net cannot
    train faster than this without a faster kernel, whatever the framework around it. An image
    layer takes the faster of its input in NCHW and in channels-last order (oneDNN's kernels
    differ by up to 2x between them)."""
    flop, seconds = 0, 0.0
    for module, shape in layer_inputs(model, forward):
        formats = [torch.contiguous_format] + ([torch.channels_last] if len(shape) == 4 else [])
        best = []
        for memory_format in formats:
            x = torch.randn(shape).contiguous(memory_format=memory_format).requires_grad_()

            def step():
                module(x).sum().backward()
            best.append(_median_seconds(step, repeats, warmup=1))
        flop += 3 * forward_flops(lambda: module(x))
        seconds += min(best)
    model.zero_grad(set_to_none=True)
    return {"gflops": flop / seconds / 1e9, "train_flop": flop, "seconds": seconds}
