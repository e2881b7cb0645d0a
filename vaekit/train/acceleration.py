"""Opt-in speed settings of training: bf16 autocast of the networks and torch.compile.

Only the encoder and decoder networks (where the FLOPs are) run under bf16 autocast; their
outputs come back as float32, so the posterior heads, likelihoods, KL terms and importance
weights stay in float32 and the weights themselves stay float32 (autocast casts copies).
"""
from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from typing import Iterator, List

import torch

from ..errors import VaekitError

PRECISIONS = ("fp32", "bf16")
NETWORKS = ("encoder", "decoder")  # the modules every structure calls its networks by


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
    ``precision`` is bf16) and hand float32 tensors on; hooks are removed afterwards."""
    if precision != "bf16":
        yield
        return
    handles = []
    for module in _networks(model):
        contexts: List[torch.autocast] = []

        def enter(_module, _args, contexts=contexts):
            contexts.append(torch.autocast(device.type, dtype=torch.bfloat16))
            contexts[-1].__enter__()

        def leave(_module, _args, output, contexts=contexts):
            contexts.pop().__exit__(None, None, None)
            return _to_float(output)

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def compiled_networks(model: torch.nn.Module, enabled: bool = True, backend: str = "inductor") -> Iterator[None]:
    """Within the block, the encoder and decoder run torch.compile'd, in place (``nn.Module.compile``:
    the parameter names, and so checkpoints, are unchanged; compiling happens on the first call).
    Afterwards they run eagerly again, so plots and evaluations of other shapes compile nothing."""
    modules = _networks(model) if enabled else []
    for module in modules:
        module.compile(backend=backend)
    try:
        yield
    finally:
        for module in modules:
            module._compiled_call_impl = None  # what nn.Module.compile set; None is the eager call


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
