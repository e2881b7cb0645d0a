"""How many threads `vaekit train` computes with: fewer when other processes keep cores busy.

PyTorch starts one OpenMP thread per core. When another CPU-bound process holds a core, one of those
threads waits for the CPU while the others spin at every parallel region's barrier, and a step takes
several times as long as with one thread (benchmarks/contention.py measures it). So before training,
the command looks at how busy the machine's cores were over a fraction of a second (``/proc/stat``,
less this process's own CPU time) and uses only the free ones. ``--threads N`` chooses, and so does
an ``OMP_NUM_THREADS`` the user set; the count is put back when the command ends.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch

SAMPLE_SECONDS = 0.25
PROC_STAT = "/proc/stat"


def _cpu_times() -> Optional[Tuple[float, float]]:
    """(busy, total) jiffies of all CPUs since boot, or None where /proc/stat is not there."""
    try:
        with open(PROC_STAT) as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cores(seconds: float = SAMPLE_SECONDS) -> Optional[float]:
    """Cores other processes kept busy over the next ``seconds`` (0 to the core count), or None."""
    cores = os.cpu_count() or 1
    first, own = _cpu_times(), time.process_time()
    if first is None:
        return None
    time.sleep(seconds)
    second, own = _cpu_times(), time.process_time() - own
    busy, total = second[0] - first[0], second[1] - first[1]
    if total <= 0:
        return None
    others = busy / total * cores - own / seconds
    return min(max(others, 0.0), float(cores))


def choose_threads(requested: Optional[int], busy: Optional[float], available: int) -> Tuple[int, Optional[str]]:
    """The thread count and, when it is fewer than ``available`` because cores are busy, the reason."""
    if requested is not None:
        return requested, None
    if busy is None:
        return available, None
    free = max(1, (os.cpu_count() or 1) - round(busy))
    if free >= available:
        return available, None
    return free, (f"training with {free} thread{'s' * (free != 1)} instead of {available}: other processes keep "
                  f"{round(busy)} of {os.cpu_count()} cores busy (--threads N chooses)")


@contextmanager
def training_threads(requested: Optional[int]) -> Iterator[Optional[str]]:
    """torch's thread count for the block (see the module's docstring); yields the note to show, if any."""
    before = torch.get_num_threads()
    if requested is not None and requested < 1:
        from ..errors import VaekitError
        raise VaekitError(f"--threads must be at least 1, got {requested}")
    explicit = requested is not None or "OMP_NUM_THREADS" in os.environ
    busy = None if explicit else busy_cores()
    threads, note = choose_threads(requested, busy, before)
    torch.set_num_threads(threads)
    try:
        yield note
    finally:
        torch.set_num_threads(before)
