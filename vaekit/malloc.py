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

:func:`return_freed_memory` sets them the other way, for a run that trades speed for memory
(``--checkpoint-activations``): every block of 1 MiB or more gets a mapping of its own, handed back to the
kernel when freed, so resident memory follows what is live. glibc's defaults instead raise the mmap
threshold to the largest block freed (up to 32 MiB), after which activations below it come from the heap,
whose freed holes stay resident: in benchmarks/image_stream.py's resnet run the training peak fell from
2.66 to 2.14 GB RSS. The cost is the page faults of each step's fresh mappings.
"""
from __future__ import annotations

import ctypes
import os
import platform
from typing import Optional

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc's malloc.h
TRIM_THRESHOLD = 1 << 30  # return free heap to the system only above 1 GiB
MMAP_THRESHOLD = 1 << 25  # 32 MiB: glibc's largest; bigger blocks still get their own mapping
LEAN_TRIM_THRESHOLD, LEAN_MMAP_THRESHOLD = 1 << 17, 1 << 20  # glibc's default trim threshold; 1 MiB

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
        _applied = thresholds(TRIM_THRESHOLD, MMAP_THRESHOLD)
    return bool(_applied)


def thresholds(trim: int, mmap: int) -> bool:
    """glibc's ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD`` for this process; whether both were taken (False
    where the C library is not glibc)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_TRIM_THRESHOLD, trim)) and bool(libc.mallopt(M_MMAP_THRESHOLD, mmap))
    except (OSError, AttributeError):
        return False


def applied() -> bool:
    """Whether this process's thresholds were set by :func:`keep_freed_memory` (changes nothing)."""
    return bool(_applied)


def return_freed_memory() -> bool:
    """Set glibc's thresholds so this process hands freed blocks of 1 MiB or more back at once (see the module's
    text); :func:`keep_freed_memory` does nothing in this process afterwards. Returns whether they are set."""
    global _applied
    _applied = False
    return thresholds(LEAN_TRIM_THRESHOLD, LEAN_MMAP_THRESHOLD)
