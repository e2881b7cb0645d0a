"""Start `vaekit` commands as processes forked from a server that has torch and vaekit imported.

A fresh ``python -m vaekit train`` spends most of a short run importing: torch, then torch._dynamo
(which torch.optim imports the first time an optimizer is built), typer and pydantic; a tiny run's
training is a small part of it. The SIGKILL test starts a process for every kill and every resume,
so it forks each from a :class:`ForkServer` instead: the server imports once and never runs torch
(no thread pool to copy), and every child is a new process that is killed, reaped and resumed like
one started from scratch. A child reseeds Python's and numpy's global generators from the OS, as a
fresh interpreter would; what it cannot get anew is the string-hash seed (PYTHONHASHSEED), so the
caller keeps two servers with different seeds and starts each resume on the other one.

    server = ForkServer(hash_seed=7)
    child = server.start(["train", "--data", "digits", ...], env={"VAEKIT_CRASH_AT": "step:3"}, stderr=path)
    child.kill(); child.wait()        # -9, as subprocess reports a SIGKILL
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Dict, Optional

PRELOAD = ("torch", "torch._dynamo", "numpy", "safetensors.torch", "typer", "typer._adapters", "pydantic", "PIL.Image",
           "vaekit.app.cli", "vaekit.app.api", "vaekit.train.trainer", "vaekit.models.build")


class Child:
    """One forked command: ``poll``, ``kill`` and ``wait`` as :class:`subprocess.Popen`'s."""

    def __init__(self, server: "ForkServer", pid: int):
        self.server, self.pid, self.returncode = server, pid, None
        self._done = threading.Event()

    def poll(self) -> Optional[int]:
        return self.returncode if self._done.is_set() else None

    def kill(self) -> None:
        self.server._send({"kill": self.pid})  # the server signals it only while it is not yet reaped

    def wait(self) -> int:
        self._done.wait()
        return self.returncode


class ForkServer:
    def __init__(self, hash_seed: int, env: Optional[Dict[str, str]] = None):
        self._log = tempfile.TemporaryFile("w+")
        environment = {**os.environ, **(env or {}), "PYTHONHASHSEED": str(hash_seed)}
        self._process = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._log, env=environment, text=True, bufsize=1)
        self._lock, self._started, self._children = threading.Lock(), {}, {}
        self._next = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def start(self, argv: list, env: Dict[str, str], stderr: Path) -> Child:
        """Fork ``vaekit *argv`` with ``env`` added to the server's environment, its stderr to ``stderr``."""
        ready = threading.Event()
        with self._lock:
            self._next += 1
            ticket = self._next
            self._started[ticket] = ready
        self._send({"ticket": ticket, "argv": argv, "env": env, "stderr": str(stderr)})
        if not ready.wait(120) or not isinstance(self._started.get(ticket), Child):
            raise RuntimeError(f"the fork server did not start {argv[:1]}: {self._server_log()}")
        return self._started.pop(ticket)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait()
        self._log.close()

    def _send(self, message: dict) -> None:
        with self._lock:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()

    def _read(self) -> None:
        for line in self._process.stdout:
            kind, key, value = (line.split() + ["", "", ""])[:3]
            if kind not in ("started", "exited"):  # something an import printed
                continue
            if kind == "started":
                child = Child(self, int(value))
                with self._lock:
                    self._children[child.pid], ready = child, self._started[int(key)]
                    self._started[int(key)] = child
                ready.set()
            else:  # exited PID RETURNCODE
                with self._lock:
                    child = self._children.pop(int(key))
                child.returncode = int(value)
                child._done.set()
        for event in [e for e in self._started.values() if isinstance(e, threading.Event)]:
            event.set()  # the server died: start() raises with its log

    def _server_log(self) -> str:
        self._log.seek(0)
        return self._log.read()[-2000:] or "(no output)"


def _serve() -> None:
    """The server: preload, then fork a child per request; report each start and exit on stdout."""
    import gc
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    gc.freeze()  # the imported objects out of the collector's reach: a child's collections neither walk nor copy them
    buffer, live = b"", set()
    while True:
        readable, _, _ = select.select([0], [], [], 0.01)
        if readable:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                message = json.loads(line)
                if "kill" in message:
                    if message["kill"] in live:
                        os.kill(message["kill"], signal.SIGKILL)
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(message)
                live.add(pid)
                _say(f"started {message['ticket']} {pid}")
        while live:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            live.discard(pid)
            _say(f"exited {pid} {-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)}")
    for pid in live:  # the caller went away: end what is left
        os.kill(pid, signal.SIGKILL)
    os._exit(0)  # no interpreter teardown: collecting torch's import graph costs a second of CPU and frees nothing


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def _child(message: dict) -> None:
    """In the forked child: become ``vaekit *argv`` as a fresh process would be, and exit with its code."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(message["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(null, 0), os.dup2(null, 1), os.dup2(err, 2)
        os.environ.update(message["env"])
        import random

        import numpy as np

        from vaekit import faults
        from vaekit.app import cli

        random.seed(), np.random.seed()  # a fresh interpreter's global generators start from OS entropy
        faults.arm()  # VAEKIT_CRASH_AT, read again now that it is set
        sys.argv = ["vaekit", *message["argv"]]
        try:
            cli.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
    except BaseException:  # noqa: BLE001 - reported on the child's stderr, as an uncaught error would be
        import traceback

        traceback.print_exc()
    finally:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    _serve()
