"""Run-directory files from an untrusted source: refused with vaekit's own message, nothing run."""
import os
import pickle
import shutil
import subprocess
import sys

import pytest
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-epoch run, trained once; each test spoils its own copy."""
    run = tmp_path_factory.mktemp("hostile") / "run"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    return run


def test_a_state_pt_crafted_to_run_code_is_refused_and_runs_nothing(trained, tmp_path):
    run = shutil.copytree(trained, tmp_path / "run")
    marker = tmp_path / "pwned"
    state = torch.load(run / "state.pt", weights_only=True)
    state["epoch"] = RunsCode(marker)
    torch.save(state, run / "state.pt")
    done = resume(run)
    assert done.returncode != 0 and not marker.exists()
    assert "refuses to load because unpickling them could run code" in done.stderr
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr and "torch" not in done.stderr.lower()


def test_a_raw_pickle_state_pt_gets_vaekit_s_one_line_message_and_no_torch_warning(trained, tmp_path):
    run = shutil.copytree(trained, tmp_path / "run")
    (run / "state.pt").write_bytes(pickle.dumps(os.getcwd))  # a plain pickle (protocol 4), not torch's zip format
    done = resume(run)
    assert done.returncode == 2 and "Warning" not in done.stderr and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: training state {run / 'state.pt'} holds Python objects")
