"""SIGTERM (what a job scheduler sends) stops training cleanly, like Ctrl-C: the step finishes, a
checkpoint is saved there, a message says how to resume, no traceback, and --resume finishes the
run. (tests/test_checkpoints.py shows the resume from such a checkpoint is bit-exact.)"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import torch

import vaekit


def test_sigterm_saves_where_it_stopped_and_the_run_resumes(tmp_path):
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
    text = " ".join(err.split())
    found = re.search(r"stopped: interrupted by SIGTERM; the run is saved "
                      r"\(after (\d+) epochs?(?: and (\d+) batch(?:es)?)?, step (\d+)\): "
                      rf"continue with `vaekit train --out {re.escape(str(run))} --resume`", text)
    assert found, text
    assert "Traceback" not in err
    state = torch.load(run / "state.pt", weights_only=True)
    epoch, batch, step = int(found[1]), found[2], int(found[3])
    # the message counts completed epochs and batches, as state.pt and the event row do
    assert (state["epoch"], state["batch"], state["step"]) == (epoch, int(batch or 0), step)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    position = {"epoch": state["epoch"], "step": state["step"], **({"batch": state["batch"]} if batch else {})}
    assert rows[-1] == {"event": "interrupted", **position, "signal": "SIGTERM"}
    vaekit.train(out=run, resume=True, epochs=state["epoch"] + 2, progress=False)
    epochs = [json.loads(line).get("epoch") for line in metrics.read_text().splitlines()
              if "event" not in json.loads(line)]
    assert epochs == list(range(1, state["epoch"] + 3))
