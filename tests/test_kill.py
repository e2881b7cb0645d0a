"""The short form of the SIGKILL test (benchmarks/kill_resume.py; `make crash-test` runs the long
one): FactorVAE (two optimizers) and VQ-VAE (EMA codebook buffers) killed with SIGKILL at a random
time, after an optimizer step, mid-write and during validation; a tiny ResNet on a streamed folder
of 16 px images (worker processes, flips and crops, --ema) once at a random time; and two GANs with
--ema, a tiny autoencoder-kl-small and a tiny vqgan-small on an EMA codebook with dead-code restarts,
each killed once before and once after its PatchGAN starts. Resumed after each kill, every run ends
bit-identical to an uninterrupted one. The processes are forked from servers that imported torch
once (benchmarks/fork_server.py), which takes a process's start from seconds to a fraction of one."""
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from kill_resume import VARIANTS, differences, run_all  # noqa: E402


KILLS = {"factorvae": 2, "vqvae": 2, "resnet-stream": 1, "kl-patchgan": 2, "vqgan-ema": 2}
DISC_START = 10  # --disc-start of kl-patchgan (autoencoder-kl-small) and vqgan-ema (vqgan-small), tiny


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kill")
    rows, errors = run_all(list(KILLS), folder, kills=KILLS, epochs=2, seed=0, plots=False)
    assert not errors, errors
    return folder, {row["variant"]: row for row in rows}


def test_killed_runs_resume_to_the_same_bits(killed):
    _, rows = killed
    assert {name: row["by_mode"] for name, row in rows.items() if name != "resnet-stream"} == {
        "factorvae": {"time": 1, "step": 1}, "vqvae": {"write": 1, "validate": 1},
        "kl-patchgan": {"step": 1, "write": 1}, "vqgan-ema": {"validate": 1, "time": 1}}
    assert rows["resnet-stream"]["by_mode"] == {"time": 1}
    for name, row in rows.items():
        assert row["kills"] == KILLS[name] and len(row["states_after_kills"]) == KILLS[name]
        assert row["identical"], (name, row["differences"], row["temp_files"], row["states_after_kills"])


@pytest.mark.parametrize("name", ["kl-patchgan", "vqgan-ema"])
def test_the_gans_are_killed_before_and_after_their_discriminator_starts(killed, name):
    row = killed[1][name]
    assert f"--disc-start {DISC_START}" in " ".join(VARIANTS[name])
    steps = [int(state.rpartition(" ")[2]) for state in row["states_after_kills"]]
    assert min(steps) < DISC_START <= max(steps), row["states_after_kills"]  # resumed into and with a trained D


def test_the_comparison_sees_one_changed_weight(killed, tmp_path):
    folder, _ = killed
    run = tmp_path / "run"
    shutil.copytree(folder / "vqvae-killed", run)
    assert differences(run, folder / "vqvae-reference") == []
    weights = load_file(str(run / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] = torch.nextafter(weights[name].view(-1)[0], torch.tensor(1e9))  # one ulp
    save_file(weights, str(run / "model.safetensors"))
    (run / ".state.pt.abcd1234.tmp").write_bytes(b"")
    assert differences(run, folder / "vqvae-reference") == ["model.safetensors", "temp files left"]
