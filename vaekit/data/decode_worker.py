"""A process that decodes batches of image files for a streamed folder (``python -m vaekit.data.decode_worker
PARENT``); :class:`vaekit.data.image_stream.DecodePool` starts and feeds it.

It imports numpy, Pillow and the decoder (:mod:`vaekit.data.image_decode`), not torch: 15 MB of its own
memory instead of the 150 MB torch's import takes, and none of the training process's pages (a worker forked
from the trainer keeps alive every page the trainer had at the fork once the trainer writes over it: 0.37 GB
for two workers in benchmarks/image_stream.py's resnet epoch, 0.99 GB in its validation pass).

The protocol, pickles on its stdin and stdout: first ``(transform, shape)``; then each request is a list of
paths, answered by ``(array, "")``, float32 (len(paths), *shape), or ``(None, message)`` for a bad file. It
ends at the end of its stdin, which also comes when the training process dies; SIGINT and SIGTERM are the
training process's to handle (a Ctrl-C or a scheduler's SIGTERM reaches the whole process group).
"""
from __future__ import annotations

import os
import pickle
import signal
import sys
from pathlib import Path
from typing import List, Sequence

import numpy as np

from ..errors import VaekitError
from .image_decode import ImageTransform, decode_image


def decode_batch(paths: Sequence[Path], transform: ImageTransform, shape: tuple) -> np.ndarray:
    """float32 (len(paths), *shape) in [0, 1]: each file through :func:`decode_image`."""
    x = np.empty((len(paths), *shape), dtype=np.float32)
    for i, path in enumerate(paths):
        x[i] = decode_image(path, transform)
    return x


def answer(paths: List[Path], transform: ImageTransform, shape: tuple, name: str):
    """One request's answer: the batch and "", or None and the message a bad file gives."""
    try:
        return decode_batch(paths, transform, shape), ""
    except VaekitError as e:
        return None, str(e)
    except PermissionError as e:
        return None, (f"cannot read '{e.filename}' (of data {name}): permission denied; make it readable (chmod) "
                      "or run vaekit as a user who can read it")
    except (OSError, ValueError, MemoryError) as e:
        return None, f"decoding a batch of data {name} failed ({type(e).__name__}: {e})"


def exit_if_orphaned(parent: int) -> None:
    """A worker whose training process ``parent`` died (a SIGKILL) while the worker was starting exits at once,
    rather than when it first reads its stdin."""
    if os.getppid() != parent:
        os._exit(0)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    exit_if_orphaned(int(sys.argv[1]))
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    try:
        transform, shape, name = pickle.load(requests)
        while True:
            pickle.dump(answer(pickle.load(requests), transform, shape, name), answers, protocol=pickle.HIGHEST_PROTOCOL)
            answers.flush()
    except (EOFError, pickle.UnpicklingError):  # the training process is done with this worker, or gone
        pass
    except BrokenPipeError:  # it stopped reading (it ended the pass early): no flush at exit either
        os._exit(0)


if __name__ == "__main__":
    main()
