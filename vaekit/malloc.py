"""Keep freed memory in the process instead of handing it back to the system each step.

glibc's malloc returns the top of its heap to the kernel once more than ``M_TRIM_THRESHOLD``
is free, and serves blocks above ``M_MMAP_THRESHOLD`` with fresh mappings. A training step
frees most of its activations at its end and allocates them again at the next one, so the
kernel zeroes and faults in the same megabytes every step: on the 2-core CPU the conv
recipe's step took 0.75x the time once they were kept, the MLP's at batch 512 0.91x
(``benchmarks/techniques.py``, ``malloc-conv`` and ``malloc-mlp``). PyTorch's Performance
Tuning Guide makes the same point for CPUs and suggests preloading jemalloc or tcmalloc; this
sets glibc's own two thresholds instead, which needs nothing installed.

Applied once per process by the ``vaekit`` command and by :func:`vaekit.train`; the process's
resident memory then stays near its peak instead of falling between steps (the peak itself
does not grow). ``VAEKIT_KEEP_FREED_MEMORY=0`` (or ``false``, ``no``, ``off``) leaves malloc as it is.
"""
from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc's malloc.h
TRIM_THRESHOLD = 1 << 30  # return free heap to the system only above 1 GiB
MMAP_THRESHOLD = 1 << 25  # 32 MiB: glibc's largest; bigger blocks still get their own mapping

OFF = ("0", "false", "no", "off")

_applied = None


def keep_freed_memory() -> bool:
    """Set glibc's trim and mmap thresholds for this process (once); False where the C library
    is not glibc, or ``VAEKIT_KEEP_FREED_MEMORY=0`` says not to."""
    global _applied
    if _applied is None:
        _applied = False
        wanted = os.environ.get("VAEKIT_KEEP_FREED_MEMORY", "1").strip().lower() not in OFF
        if wanted and platform.libc_ver()[0] == "glibc":
            try:
                libc = ctypes.CDLL(None)
                _applied = bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and \
                    bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
            except (OSError, AttributeError):
                _applied = False
    return _applied
