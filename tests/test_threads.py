"""`vaekit train` computes with the free cores: fewer threads when other processes keep cores busy."""
import os
import subprocess
import sys
import time

import pytest
import torch

from conftest import run_cli
from vaekit.app.threads import busy_cores, choose_threads, training_threads

CORES = os.cpu_count() or 1


def test_the_choice_follows_the_busy_cores_and_an_explicit_request():
    assert choose_threads(None, 0.1, 2) == (2, None)
    threads, note = choose_threads(None, float(CORES - 1), 2)
    assert threads == 1 and note.startswith("training with 1 thread instead of 2") and "--threads N" in note
    assert choose_threads(None, float(CORES), 2)[0] == 1  # never 0
    assert choose_threads(3, float(CORES), 2) == (3, None)  # --threads wins
    assert choose_threads(None, None, 2) == (2, None)  # no /proc/stat: torch's default


def test_a_spinning_process_shows_as_a_busy_core():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        busy = busy_cores(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and 0.5 <= busy <= CORES


def test_the_thread_count_is_put_back_and_omp_num_threads_is_respected(tmp_path, capsys, monkeypatch):
    before = torch.get_num_threads()
    with training_threads(1) as note:
        assert torch.get_num_threads() == 1 and note is None
    assert torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))
    with training_threads(None) as note:  # the user chose: no sampling, no change
        assert torch.get_num_threads() == before and note is None
    code, _, err = run_cli(["train", "--threads", "0", "--out", tmp_path / "r"], capsys)
    assert code != 0 and "--threads must be at least 1" in err
    code, _, err = run_cli(["train", "--threads", "1", "--epochs", "1", "--hidden", "32", "--no-plots",
                            "--no-progress", "--out", tmp_path / "r"], capsys)
    assert code == 0 and torch.get_num_threads() == before, err
