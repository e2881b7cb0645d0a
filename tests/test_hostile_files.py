"""Run-directory files from an untrusted source: refused with vaekit's own message, nothing run."""
import os
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


def test_a_state_pt_crafted_to_run_code_is_refused_and_runs_nothing(tmp_path):
    run = tmp_path / "run"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    marker = tmp_path / "pwned"
    state = torch.load(run / "state.pt", weights_only=True)
    state["epoch"] = RunsCode(marker)
    torch.save(state, run / "state.pt")
    done = subprocess.run([sys.executable, "-m", "vaekit", "train", "--out", str(run), "--resume", "--epochs", "2"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0 and not marker.exists()
    assert "refuses to load because unpickling them could run code" in done.stderr
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr and "torch" not in done.stderr.lower()
