"""Keep freed memory in the process instead of handing it back to the system each step.

glibc's malloc returns the top of its heap to the kernel once more than ``M_TRIM_THRESHOLD``
is free, and serves blocks above ``M_MMAP_THRESHOLD`` with fresh mappings. A training step
frees most of its activations at its end and allocates them again at the next one, so the
kernel zeroes and faults in the same megabytes every step; kept, they are reused as they are
(``benchmarks/techniques.py`` times it, rows ``malloc-conv`` and ``malloc-mlp``; the README gives the
ratios). PyTorch's Performance Tuning Guide makes the same point for CPUs and suggests preloading
jemalloc or tcmalloc; this sets glibc's own two thresholds instead, which needs nothing installed.

The ``vaekit`` command applies it for every command; ``VAEKIT_KEEP_FREED_MEMORY=0`` (or ``false``,
``no``, ``off``) leaves malloc as it is. A library changes nothing process-wide unasked, so
:func:`vaekit.train` applies it only with ``keep_freed_memory=True`` or ``VAEKIT_KEEP_FREED_MEMORY=1``.
Once applied, the process's resident memory stays near its peak instead of falling between steps
(the peak itself does not grow); it cannot be undone within the process.
"""
from __future__ import annotations

import ctypes
import os
import platform
from typing import Optional

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc's malloc.h
TRIM_THRESHOLD = 1 << 30  # return free heap to the system only above 1 GiB
MMAP_THRESHOLD = 1 << 25  # 32 MiB: glibc's largest; bigger blocks still get their own mapping

ENV = "VAEKIT_KEEP_FREED_MEMORY"
OFF = ("0", "false", "no", "off")

_applied: Optional[bool] = None  # None until tried; then whether glibc took both settings


def requested(default: bool) -> bool:
    """What ``VAEKIT_KEEP_FREED_MEMORY`` asks for: False for 0/false/no/off, True for any other value,
    ``default`` when it is unset or empty."""
    value = os.environ.get(ENV, "").strip().lower()
    return default if not value else value not in OFF


def keep_freed_memory(wanted: Optional[bool] = None) -> bool:
    """Set glibc's trim and mmap thresholds for this process (once) when ``wanted``; None: as
    ``VAEKIT_KEEP_FREED_MEMORY`` says, on when unset (the ``vaekit`` command's default). Returns
    whether they are set: False where the C library is not glibc, or when not wanted."""
    global _applied
    if wanted is None:
        wanted = requested(default=True)
    if wanted and _applied is None:
        _applied = False
        if platform.libc_ver()[0] == "glibc":
            try:
                libc = ctypes.CDLL(None)
                _applied = bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and \
                    bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
            except (OSError, AttributeError):
                _applied = False
    return bool(_applied)


def applied() -> bool:
    """Whether this process's thresholds were set by :func:`keep_freed_memory` (changes nothing)."""
    return bool(_applied)
