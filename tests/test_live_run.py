"""Evaluating a run while it trains: the command says so and which epoch's weights it evaluated, and
each epoch's numbers are kept apart; training.json marks the run only while a process trains it."""
import json
import os
import subprocess
import sys
import time

import vaekit
from conftest import run_cli
from vaekit import rundir


def test_the_marker_exists_only_while_training_and_a_dead_process_leaves_none_alive(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    with rundir.training(run):
        assert rundir.training_now(run)["pid"] == os.getpid()
    assert not (run / rundir.TRAINING).exists() and rundir.training_now(run) is None
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket
    (run / rundir.TRAINING).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    assert rundir.training_now(run) is None  # left by a process killed with SIGKILL
    (run / rundir.TRAINING).write_text("{broken")
    assert rundir.training_now(run) is None


def test_evaluating_a_live_run_says_so_and_keys_the_numbers_by_epoch(tmp_path, capsys):
    run = tmp_path / "r"
    vaekit.train("digits", out=run, epochs=1, hidden=[32], progress=False)
    assert not (run / rundir.TRAINING).exists()  # removed when training ends
    code, _, err = run_cli(["evaluate", run, "--metrics", "elbo"], capsys)
    assert code == 0 and "still training" not in err
    child = subprocess.Popen([sys.executable, "-m", "vaekit", "train", "--out", str(run), "--resume", "--epochs",
                              "400", "--no-plots", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (rundir.saved_epoch(run) or 0) < 3:
            time.sleep(0.05)
        assert rundir.training_now(run) is not None
        code, _, err = run_cli(["evaluate", run, "--metrics", "elbo"], capsys)
        assert code == 0, err
        epoch = int(" ".join(err.split()).split("saved at epoch ")[1].split(",")[0])
        assert f"{run} is still training; these numbers are of its last weights, saved at epoch {epoch}" in " ".join(
            err.split()) and epoch >= 3
    finally:
        child.kill()  # not SIGTERM: its graceful save and the interpreter's teardown are no part of this test
        child.communicate(timeout=60)
    saved = vaekit.open_run(run).evaluations
    epochs = sorted(e["epoch"] for e in saved.values())
    assert epochs == [1, epoch] and all(key.endswith(f":epoch{e['epoch']}") for key, e in saved.items())
