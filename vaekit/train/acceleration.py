"""Opt-in speed and memory settings of training: bf16 autocast of the networks, torch.compile, and
activation checkpointing.

Only the encoder and decoder networks (where the FLOPs are) run under bf16 autocast; their
outputs come back as float32, so the posterior heads, likelihoods, KL terms and importance
weights stay in float32 and the weights themselves stay float32 (autocast casts copies).
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import time
from contextlib import contextmanager
from typing import Callable, Iterator, List, Tuple, Union

import torch
import torch.utils.checkpoint

from .. import malloc
from ..errors import VaekitError

PRECISIONS = ("fp32", "bf16")
NETWORKS = ("encoder", "decoder")  # the modules every structure calls its networks by


def check_settings(tc, model: torch.nn.Module, device: torch.device) -> str:
    """Every setting below checked before a run writes anything (a bad one fails with its fix); returns the
    precision's note for the user, or ''. ``tc``: the run's train config."""
    note = check_precision(tc.precision, device)
    if tc.compile:
        check_compile(device)
    if tc.checkpoint_activations:
        recompute_units(model)
    return note


@contextmanager
def accelerated(model: torch.nn.Module, tc, device: torch.device) -> Iterator[None]:
    """Within the block the networks run as ``tc`` asks: bf16 autocast, compiled, activations recomputed (and
    then, for the process, freed memory handed back to the system at once: :func:`vaekit.malloc.return_freed_memory`)."""
    if tc.checkpoint_activations:
        malloc.return_freed_memory()
    with network_precision(model, tc.precision, device), compiled_networks(model, tc.compile), \
            recomputed_activations(model, tc.checkpoint_activations):
        yield


def check_precision(precision: str, device: torch.device) -> str:
    """'' when ``precision`` runs well on ``device``, else a note for the user; bad names fail."""
    if precision not in PRECISIONS:
        raise VaekitError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise VaekitError("--precision bf16: this GPU has no bfloat16 support; use --precision fp32")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        return ("note: this CPU has no BF16 instructions (AVX-512 BF16 or AMX), so --precision bf16 runs "
                "slower than fp32 here (benchmarks/vs_pythae.py measured it); it is meant for GPUs and "
                "CPUs that have them")
    return ""


def check_compile(device: torch.device) -> None:
    """torch.compile's CPU code is C++ built on the first step: fail now, with the fix, if no compiler."""
    compilers = [os.environ.get("CXX", ""), "g++", "clang++", "c++"]
    if device.type == "cpu" and not any(c and shutil.which(c) for c in compilers):
        raise VaekitError("--compile on the CPU needs a C++ compiler (g++ or clang++), and none was found; "
                          "install one (e.g. apt-get install g++), or train without --compile")


def cpu_has_bf16() -> bool:
    """Whether oneDNN finds BF16 instructions on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextmanager
def network_precision(model: torch.nn.Module, precision: str, device: torch.device) -> Iterator[None]:
    """Within the block, ``model.encoder`` and ``model.decoder`` run under bf16 autocast (when
    ``precision`` is bf16) and hand float32 tensors on; afterwards they run as before. Autocast is a
    context around each forward, so a forward that raises leaves it off."""
    def in_bf16(forward: Callable) -> Callable:
        @functools.wraps(forward)
        def run(*args, **kwargs):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                output = forward(*args, **kwargs)
            return _to_float(output)
        return run

    with _forwards_wrapped(_networks(model) if precision == "bf16" else [], in_bf16):
        yield


@contextmanager
def compiled_networks(model: torch.nn.Module, enabled: bool = True,
                      backend: Union[str, Callable] = "inductor") -> Iterator[None]:
    """Within the block, the encoder's and decoder's forwards run torch.compile'd (the modules are not
    wrapped, so parameter names, and so checkpoints, are unchanged; compiling happens on the first call).
    Afterwards they run eagerly again, so plots and evaluations of other shapes compile nothing."""
    def compiled(forward: Callable) -> Callable:
        return torch.compile(forward, backend=backend)

    with _forwards_wrapped(_networks(model) if enabled else [], compiled):
        yield


@contextmanager
def recomputed_activations(model: torch.nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block, each method that a module of the encoder and decoder names in its class's
    ``recomputed`` (the ResNet's residual blocks, attention, down- and up-sampling, and the decoder's full-size
    head) keeps only its inputs for backward and runs again there (activation or gradient checkpointing, Chen
    et al. 2016, "Training Deep Nets with Sublinear Memory Cost"; diffusers' ``enable_gradient_checkpointing``),
    by ``torch.utils.checkpoint`` without re-entry: one more forward pass of each block per step. The backward
    graph is the same, only its saved tensors are computed again, so the gradients are equal; without
    gradients (validation, plots) everything runs as before."""
    def recomputed(forward: Callable) -> Callable:
        @functools.wraps(forward)
        def run(*args):
            if not torch.is_grad_enabled():
                return forward(*args)
            return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False)
        return run

    units = recompute_units(model) if enabled else []
    with contextlib.ExitStack() as stack:
        for name in sorted({name for _, name in units}):
            stack.enter_context(_forwards_wrapped([m for m, n in units if n == name], recomputed, name))
        yield


def recompute_units(model: torch.nn.Module) -> List[Tuple[torch.nn.Module, str]]:
    """(module, method) of the encoder and decoder that --checkpoint-activations recomputes; none fails."""
    units = [(m, name) for net in _networks(model) for m in net.modules()
             for name in getattr(m, "recomputed", ())]  # the instance's own, else its class's
    if not units:
        names = ", ".join(type(net).__name__ for net in _networks(model)) or "no encoder or decoder"
        raise VaekitError(f"--checkpoint-activations: the networks ({names}) have no blocks to recompute; it "
                          f"applies to --network resnet (or networks of vaekit.nn.blocks); drop it for this network")
    return units


@contextmanager
def _forwards_wrapped(modules: List[torch.nn.Module], wrap: Callable[[Callable], Callable],
                      method: str = "forward") -> Iterator[None]:
    """Within the block, each module's ``forward`` (or ``method``) is ``wrap(forward)`` (an attribute of the
    instance, which ``nn.Module.__call__`` calls); afterwards the one it had, even when the block raised."""
    had = [(module, module.__dict__.get(method)) for module in modules]
    for module in modules:
        setattr(module, method, wrap(getattr(module, method)))
    try:
        yield
    finally:
        for module, forward in reversed(had):
            if forward is None:
                delattr(module, method)  # the class's method again
            else:
                setattr(module, method, forward)


class FirstStepTimer:
    """Times the first training step of a process: with --compile that is when compiling happens."""

    def __init__(self):
        self.start, self.seconds = time.perf_counter(), None

    def done(self) -> bool:
        """Call after each step; True exactly once, after the first."""
        if self.seconds is not None:
            return False
        self.seconds = time.perf_counter() - self.start
        return True


def _networks(model: torch.nn.Module) -> List[torch.nn.Module]:
    return [m for m in (getattr(model, name, None) for name in NETWORKS) if isinstance(m, torch.nn.Module)]


def _to_float(output):
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, (tuple, list)):
        return type(output)(_to_float(o) for o in output)
    return output
