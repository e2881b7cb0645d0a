"""``training.json``: present while a process trains the run, so that what reads the run meanwhile
(``vaekit evaluate``) can say that its numbers are of a run still training, and of which epoch."""
from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .files import TRAINING, atomic_write


@contextmanager
def training(run) -> Iterator[None]:
    """The marker for the block's duration; removed however the block ends. A process killed with
    SIGKILL leaves it behind, which :func:`training_now` recognises by its dead process id."""
    path = Path(run) / TRAINING
    marker = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(marker), encoding="utf-8"))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def training_now(run) -> Optional[dict]:
    """The marker of the process training ``run`` now, or None (no marker, a damaged one, or one left
    by a process of this machine that no longer runs)."""
    try:
        marker = json.loads((Path(run) / TRAINING).read_text(encoding="utf-8"))
        pid, host = int(marker["pid"]), str(marker["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname() and not _alive(pid):
        return None
    return marker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
