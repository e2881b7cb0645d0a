"""Files and folders vaekit may not read, and file names that are not UTF-8, through the real CLI:
each ends in vaekit's own one-line error naming the path (exit code 2), never a traceback.

Root reads everything, so the unreadable cases run vaekit as user nobody (setpriv)."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def nobody_can_run_vaekit() -> bool:
    """Root, setpriv, and a checkout and venv that user nobody may read (a clone in a 0700 folder,
    such as one made by mktemp -d, is not): opening vaekit's and torch's files as nobody is the test."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    import torch

    import vaekit
    probe = f"for f in {[vaekit.__file__, torch.__file__]!r}: open(f).close()"
    return subprocess.run(AS_NOBODY + [sys.executable, "-I", "-S", "-c", probe], capture_output=True).returncode == 0


needs_nobody = pytest.mark.skipif(not nobody_can_run_vaekit(), reason="needs root, setpriv, and a checkout and "
                                  "venv that user nobody may read")


@pytest.fixture
def shared_dir():
    """A temporary folder that user nobody can enter and write (tmp_path's parents are root-only)."""
    path = Path(tempfile.mkdtemp(prefix="vaekit-unreadable-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)  # as root, whatever the modes


def vaekit_cli(args, home: Path, as_nobody: bool = False, python=("-m", "vaekit")) -> subprocess.Popen:
    """``python -m vaekit ARGS`` started (as user nobody if asked); collect it with :func:`assert_refused`."""
    prefix = AS_NOBODY if as_nobody else []
    env = {**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home / ".mpl"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(prefix + [sys.executable, *python, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


# vaekit.load in Python, its VaekitError printed as the CLI would (exit code 2)
LOAD = ("-c", "import sys, vaekit\nfrom vaekit.errors import VaekitError\ntry:\n    vaekit.load(sys.argv[1])\n"
              "except VaekitError as e:\n    print(f'error: {e}', file=sys.stderr)\n    sys.exit(2)")


# `python -m vaekit ARGS` (or the LOAD script) per command, each a process of its own forked from one interpreter
# that imported vaekit's command and torch once (one import of torch instead of one a command); the commands run
# side by side; each child's stderr goes to its own file (user nobody may write there), after the parent's own
FORKED = r"""
import json, os, runpy, sys, traceback
import torch, vaekit.app.cli
commands, folder = json.loads(sys.argv[1]), sys.argv[2]
children = []
for i, (python, args) in enumerate(commands):
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        err = os.open(os.path.join(folder, f"{i}.stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(err, 2)
        try:
            if python[0] == "-m":
                sys.argv = ["vaekit", *args]
                runpy.run_module(python[1], run_name="__main__", alter_sys=True)
            else:
                sys.argv = ["-c", *args]
                exec(compile(python[1], "<string>", "exec"), {"__name__": "__main__"})
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else (print(e.code, file=sys.stderr), 1)[1]
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    children.append(pid)
print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]), flush=True)
os._exit(0)  # no teardown of torch's import graph
"""


def vaekit_clis_forked(commands, home: Path) -> list:
    """(exit code, stderr) of each ``(python, args)`` in ``commands`` (python: ``("-m", "vaekit")`` or
    :data:`LOAD`), run as user nobody in processes forked from one (:data:`FORKED`)."""
    import json

    env = {**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home / ".mpl"), "OMP_NUM_THREADS": "1"}
    out = home / "forked-stderr"
    out.mkdir()
    out.chmod(0o777)
    done = subprocess.run(AS_NOBODY + [sys.executable, "-c", FORKED, json.dumps([[list(p), a] for p, a in commands]),
                                       str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    return [(code, done.stderr + (out / f"{i}.stderr").read_text("utf-8", "replace")) for i, code in enumerate(codes)]


def assert_refused(process, *expected: str) -> str:
    """The process (a Popen, or a finished one's (exit code, stderr)) exits with code 2 and a message holding each
    of ``expected``, no traceback."""
    if isinstance(process, subprocess.Popen):
        _, stderr = process.communicate(timeout=120)
        returncode, stderr = process.returncode, stderr.decode("utf-8", "replace")
    else:
        returncode, stderr = process
    assert returncode == 2, stderr[-2000:]
    assert "Traceback" not in stderr and "UnicodeEncodeError" not in stderr, stderr[-2000:]
    for text in expected:
        assert text in stderr, stderr
    return stderr


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4, 4), 128).save(buf, format="PNG")
    return buf.getvalue()


@needs_nobody
def test_unreadable_data_and_run_files(shared_dir):
    """An image folder with a class folder nobody may list, a shard folder with a shard nobody may
    open, and runs whose weights or config nobody may open: the commands run side by side."""
    import vaekit

    images, shards, run, other = (shared_dir / name for name in ("images", "shards", "run", "other"))
    for cls in ("cat", "dog"):
        (images / cls).mkdir(parents=True)
        for i in range(3):
            (images / cls / f"{i}.png").write_bytes(png_bytes())
    shards.mkdir()
    for i in range(2):
        np.save(shards / f"x-{i}.npy", np.zeros((10, 3), np.float32))
    vaekit.train("digits", out=run, epochs=1, hidden=[8], latent_dim=2, batch_size=512, progress=False)
    other.mkdir()
    (other / "config.json").write_text("{}")
    shutil.copytree(run, shared_dir / "locked")
    for p in shared_dir.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    blocked = [images / "dog", shards / "x-1.npy", run / "model.safetensors", other / "config.json",
               shared_dir / "locked"]
    for p in blocked:
        p.chmod(0o000)
    train = ["train", "--out", str(shared_dir / "new"), "--epochs", "1", "--data"]
    cli = ("-m", "vaekit")
    started = vaekit_clis_forked([(cli, args) for args in (train + [str(images)], train + [str(shards)],
                                                          ["evaluate", str(run)], ["evaluate", str(other)])] +
                                 [(LOAD, [str(blocked[4])])], shared_dir)
    assert_refused(started[0], f"cannot read '{blocked[0]}'", "permission denied")
    assert_refused(started[1], f"cannot read '{blocked[1]}'", "permission denied")
    assert_refused(started[2], f"cannot read checkpoint {blocked[2]}: permission denied")
    assert_refused(started[3], f"cannot read run config {blocked[3]}: permission denied")
    assert_refused(started[4], f"cannot read run directory {blocked[4]}: permission denied")
    assert not (shared_dir / "new").exists()


def test_non_utf8_data_name_in_cli_message(tmp_path):
    """A broken .npy whose name is not valid UTF-8: the message names it (its odd byte escaped)."""
    folder = os.fsencode(tmp_path)
    bad = os.path.join(folder, b"bad\xff.npy")
    with open(bad, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00broken")
    started = vaekit_cli([b"train", b"--data", bad, b"--out", os.path.join(folder, b"run"), b"--epochs", b"1"],
                         tmp_path)
    stderr = assert_refused(started, "as a .npy array")
    assert f"could not read '{tmp_path}/bad\\udcff.npy' as a .npy array" in stderr, stderr  # stderr's backslashreplace
