"""SIGTERM (what a job scheduler sends) stops training cleanly, like Ctrl-C: a message that says how
to resume, no traceback, the last completed epoch on disk, and --resume finishes the run."""
import json
import os
import signal
import subprocess
import sys
import time

import torch

import vaekit


def test_sigterm_stops_cleanly_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "vaekit", "train", "--data", "digits", "--epochs", "500", "--hidden", "32",
               "--batch-size", "256", "--no-plots", "--no-progress", "--out", str(run)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 2):
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert f"interrupted; the last completed epoch is saved: continue with `vaekit train --out {run} --resume`" \
        in " ".join(err.split())
    assert "Traceback" not in err
    saved = torch.load(run / "state.pt", weights_only=True)["epoch"]
    rows = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    # the signal may land between epoch 2's metrics row and its checkpoint: then epoch 1 is the one kept
    assert 1 <= saved < 500 and rows[-1] >= saved  # rows past the checkpoint are trimmed on resume
    vaekit.train(out=run, resume=True, epochs=saved + 1, progress=False)
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == list(range(1, saved + 2))
