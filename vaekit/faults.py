"""Crash points for the SIGKILL test (benchmarks/kill_resume.py, tests/test_kill.py).

With ``VAEKIT_CRASH_AT=NAME:N`` in the environment, the process kills itself with SIGKILL the
N-th time it reaches the point called NAME: ``step`` (after an optimizer step), ``write`` (a
file written to its temp name, not yet renamed into place), ``validate`` (a validation batch)
or ``plot`` (before each plot). Without it, which is always the case outside those tests, a
point is one comparison.
"""
from __future__ import annotations

import os
import signal
from typing import Dict, Optional, Tuple

ENV = "VAEKIT_CRASH_AT"
POINTS = ("step", "write", "validate", "plot")


def _target() -> Optional[Tuple[str, int]]:
    text = os.environ.get(ENV, "")
    name, _, count = text.partition(":")
    if name not in POINTS or not count.isdigit() or int(count) < 1:
        return None
    return name, int(count)


_TARGET = _target()
_seen: Dict[str, int] = {}


def arm() -> None:
    """Read VAEKIT_CRASH_AT again (a forked test process sets it after vaekit was imported)."""
    global _TARGET
    _TARGET = _target()
    _seen.clear()


def point(name: str) -> None:
    if _TARGET is None or _TARGET[0] != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
