"""``vaekit train --nproc N``: start N training processes on this machine through torchrun's own launcher.

The processes then join one run through :mod:`vaekit.train.distributed`; this module only parses the
command line and starts them (app code: the library never launches processes)."""
from __future__ import annotations

import logging
import os
from typing import List, Optional

import torch

from ..errors import Interrupted, VaekitError
from ..train.distributed import uses_cuda


def launch(nproc: int, device: Optional[str], argv: List[str]) -> None:
    """``vaekit train --nproc N ARGS``: torchrun's own launcher (``torch.distributed.run``), standalone
    on this machine, runs ``python -m vaekit train ARGS`` N times. Its log lines are silenced; a
    worker's error is printed by the worker itself."""
    check_launch(nproc, device)
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # torchrun would set 1 thread per process, with a warning; share the cores instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    args = get_args_parser().parse_args(["--standalone", "--nproc-per-node", str(nproc), "-m", "vaekit",
                                         "train", *argv])
    logging.disable(logging.CRITICAL)   # torchrun's agent logs through loggers of its own levels
    try:
        run(args)
    except ChildFailedError as e:
        # the root cause: a worker that exited by itself (others were then stopped by signal), first in time
        rank, failure = min(e.failures.items(), key=lambda item: (item[1].exitcode <= 0, item[1].timestamp))
        if failure.exitcode in (VaekitError.exit_code, Interrupted.exit_code):
            raise SystemExit(failure.exitcode) from None    # the worker printed its own error
        raise WorkerFailed(rank, failure.exitcode) from None
    except SignalException:
        raise SystemExit(Interrupted.exit_code) from None  # Ctrl-C: each worker said how to resume
    finally:
        logging.disable(logging.NOTSET)


class WorkerFailed(VaekitError):
    """A training process ended without a vaekit error of its own (killed, out of memory, a bug)."""

    def __init__(self, rank: int, code: int):
        super().__init__(f"training process {rank} stopped with exit code {code}; its output above says why")
        self.exit_code = code if code > 0 else 1


def check_launch(nproc, device: Optional[str]) -> None:
    if not isinstance(nproc, int) or nproc < 1:
        raise VaekitError(f"--nproc must be at least 1, got {nproc}")
    if os.environ.get("WORLD_SIZE") and os.environ.get("RANK"):
        raise VaekitError("--nproc launches torchrun itself; under torchrun drop --nproc")
    device = device or "auto"
    if uses_cuda(device) and torch.cuda.device_count() < nproc:
        raise VaekitError(f"--nproc {nproc} with --device {device} needs {nproc} GPUs, this machine has "
                          f"{torch.cuda.device_count()}; lower --nproc or train on --device cpu")


def without_nproc(argv: List[str]) -> List[str]:
    """The train command's arguments with ``--nproc N`` (or ``--nproc=N``) taken out."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out
