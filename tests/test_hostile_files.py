"""Run-directory files from an untrusted source: refused with vaekit's own message, nothing run."""
import os
import pickle
import subprocess
import sys

import torch

import vaekit

SMALL = dict(hidden=[32], batch_size=256, progress=False)


class RunsCode:
    """Unpickling this calls os.system: what a crafted state.pt would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def resume(run) -> subprocess.CompletedProcess:
    """``vaekit train --out RUN --resume`` as a user runs it, in its own process."""
    return subprocess.run([sys.executable, "-m", "vaekit", "train", "--out", str(run), "--resume", "--epochs", "2"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_a_state_pt_crafted_to_run_code_is_refused_and_runs_nothing(tmp_path):
    run = tmp_path / "run"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    marker = tmp_path / "pwned"
    state = torch.load(run / "state.pt", weights_only=True)
    state["epoch"] = RunsCode(marker)
    torch.save(state, run / "state.pt")
    done = resume(run)
    assert done.returncode != 0 and not marker.exists()
    assert "refuses to load because unpickling them could run code" in done.stderr
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr and "torch" not in done.stderr.lower()


def test_a_raw_pickle_state_pt_gets_vaekit_s_one_line_message_and_no_torch_warning(tmp_path):
    run = tmp_path / "run"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    (run / "state.pt").write_bytes(pickle.dumps(os.getcwd))  # a plain pickle (protocol 4), not torch's zip format
    done = resume(run)
    assert done.returncode == 2 and "Warning" not in done.stderr and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: training state {run / 'state.pt'} holds Python objects")
