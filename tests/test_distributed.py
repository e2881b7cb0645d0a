"""Multi-process training: 2 ranks with gloo on 127.0.0.1 against one process.

The ranks are forked (torch.multiprocessing, no re-import, so a run takes a second or two)
with the environment torchrun gives its workers, and VAEKIT_CHECK_SYNC=1 makes them check
after every step that they hold bit-identical weights. One test goes through the real
launcher (`vaekit train --nproc 2`, torchrun) through the CLI's entry point.
"""
import json
import os
import socket
import sys

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

import vaekit
from vaekit import faults, rundir
from vaekit.errors import VaekitError
from vaekit.models import build_model
from vaekit.app.launch import launch, without_nproc

from conftest import run_cli

# digits: 1294 training examples = 3 * 431 + 1, so each epoch ends on a global batch of one
# example, and rank 1's share of it is empty (the weight-0 path).
TINY = dict(hidden=[32], batch_size=431, lr=3e-3, progress=False)
NOISE = ("traceback", "warn", "elastic", "rendezvous", "gloo", "childfailed")
RTOL = 1e-5   # metrics rows: measured differences are ~1e-7 relative


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, world, port, log_dir, watch, kwargs):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), VAEKIT_CHECK_SYNC="1")
    crash = kwargs.pop("crash_rank_0_at", None)
    if crash and rank == 0:  # rank 0 kills itself with SIGKILL there (vaekit/faults.py)
        os.environ["VAEKIT_CRASH_AT"] = crash
        faults.arm()
    torch.set_num_threads(1)
    for fd, name in ((1, "out"), (2, "err")):  # each rank's output, to check rank 1 prints nothing
        os.dup2(os.open(os.path.join(log_dir, f"{name}{rank}.txt"), os.O_WRONLY | os.O_CREAT), fd)
    if rank > 0:  # record every file this rank opens for writing, renames or creates under `watch`
        touched = []

        def audit(event, args):
            writing = event == "open" and (args[1] is None and args[2] & (os.O_WRONLY | os.O_RDWR) or
                                           args[1] and any(c in args[1] for c in "wax+"))
            if (writing or event in ("os.rename", "os.mkdir", "os.remove", "tempfile.mkstemp")) \
                    and str(args[0]).startswith(watch):
                touched.append(f"{event} {args[0]}")

        sys.addaudithook(audit)
    try:
        vaekit.train(**kwargs)
    finally:
        if rank > 0:
            record = list(touched)  # before this file's own open is recorded
            with open(os.path.join(log_dir, f"touched{rank}.json"), "w") as f:
                json.dump(record, f)


def train_ranks(tmp_path, world=2, **kwargs):
    """``vaekit.train(**kwargs)`` in ``world`` forked processes; returns (rank 1's writes, outputs)."""
    logs = tmp_path / f"logs-{len(list(tmp_path.glob('logs-*')))}"
    logs.mkdir()
    vaekit.load_data("digits")  # scikit-learn imported once here, not in every forked rank
    mp.start_processes(_rank, args=(world, free_port(), str(logs), str(tmp_path), kwargs), nprocs=world,
                       start_method="fork")
    touched = json.loads((logs / "touched1.json").read_text())
    outputs = {p.name: p.read_text() for p in logs.glob("*.txt")}
    return touched, outputs


def rows(run):
    """The metric rows (not the event rows), without the seconds."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rundir.read_metrics(run / "metrics.jsonl")]


def assert_close_rows(a, b, rtol):
    assert [r.keys() for r in a] == [r.keys() for r in b]
    for ra, rb in zip(a, b):
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], rel=rtol, abs=1e-9), k


def weight_differences(run_a, run_b):
    """Per tensor: (largest |a - b| / largest |a|, ||a - b|| / ||a||)."""
    a, b = load_file(str(run_a / "model.safetensors")), load_file(str(run_b / "model.safetensors"))
    assert a.keys() == b.keys()
    return {k: (float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1e-30)),
                float((a[k] - b[k]).norm() / a[k].norm().clamp(min=1e-30))) for k in a}


# SGD: the weights differ by the rounding of the gradients' sums (measured 1.2e-7 of each tensor's
# largest value after 3 epochs). Adam divides by the gradients' running RMS, which magnifies the
# rounding of gradients near zero: single elements differ by up to 1.4e-5 of the largest value
# after 2-3 epochs, the tensors' L2 norms by 6e-7. The plain mean of the ranks' gradients (wrong on
# the last, uneven batch) fails both: 8e-2 (SGD) and 2e-3 (Adam) of the largest value.
@pytest.mark.parametrize("optimizer, lr, largest, l2", [("sgd", 0.05, 1e-6, 1e-6), ("adam", 3e-3, 1e-4, 1e-5)])
def test_two_processes_equal_one_with_the_same_global_batch(tmp_path, optimizer, lr, largest, l2):
    # the deterministic autoencoder: no noise, so the only difference is the order of float sums
    options = dict(data="digits", model="ae", epochs=2, **dict(TINY, optimizer=optimizer, lr=lr))
    vaekit.train(out=tmp_path / "one", **options)
    touched, outputs = train_ranks(tmp_path, out=str(tmp_path / "two"), **options)
    for name, (worst, norm) in weight_differences(tmp_path / "one", tmp_path / "two").items():
        assert worst <= largest and norm <= l2, name
    assert_close_rows(rows(tmp_path / "one"), rows(tmp_path / "two"), RTOL)
    assert rows(tmp_path / "two")[-1]["step"] == 8          # 4 global steps an epoch, on both ranks
    assert touched == [] and outputs["out1.txt"] == outputs["err1.txt"] == ""


def test_resumed_two_process_run_equals_an_uninterrupted_one(tmp_path):
    # the VAE draws noise: each rank has its own random stream, saved in state.pt for every rank
    common = dict(data="digits", seed=3, **TINY)
    train_ranks(tmp_path, epochs=3, out=str(tmp_path / "straight"), **common)
    train_ranks(tmp_path, epochs=2, out=str(tmp_path / "split"), **common)
    train_ranks(tmp_path, epochs=3, out=str(tmp_path / "split"), resume=True, progress=False)
    a, b = load_file(str(tmp_path / "straight" / "model.safetensors")), load_file(
        str(tmp_path / "split" / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert rows(tmp_path / "straight") == rows(tmp_path / "split")
    state = torch.load(tmp_path / "split" / "state.pt", weights_only=True)
    assert len(state["rank_rngs"]) == 2 and not torch.equal(*state["rank_rngs"])  # ranks draw different noise

    # 4 steps an epoch, a checkpoint every 3 steps, rank 0 killed after step 7: the run resumes from
    # step 6, the 2nd of epoch 2, with both ranks' random states and running sums
    with pytest.raises(mp.ProcessExitedException, match="SIGKILL"):
        train_ranks(tmp_path, epochs=3, out=str(tmp_path / "killed"), checkpoint_every=3,
                    crash_rank_0_at="step:7", **common)
    state = torch.load(tmp_path / "killed" / "state.pt", weights_only=True)
    assert (state["epoch"], state["step"], state["batch"]) == (1, 6, 2) and len(state["sums"]) == 2
    train_ranks(tmp_path, epochs=3, out=str(tmp_path / "killed"), resume=True, progress=False)
    c = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert rows(tmp_path / "killed") == rows(tmp_path / "straight")


@pytest.mark.parametrize("variant", ["factorvae", "vqvae"])
def test_several_optimizers_and_ema_buffers_stay_in_step(tmp_path, variant):
    # factorvae: two optimizers and a discriminator called outside forward; vqvae: EMA codebook buffers.
    # VAEKIT_CHECK_SYNC fails the run if the ranks' weights or buffers differ in any bit after any step.
    sets = (["model.structure.args.disc_hidden=16", "model.structure.args.disc_layers=2"] if variant == "factorvae"
            else ["model.structure.args.codes=16", "model.structure.args.code_dim=4"])
    out = tmp_path / variant
    options = dict(data="digits", model=variant, epochs=1, sets=sets, latent_dim=4, **dict(TINY, batch_size=64))
    touched, _ = train_ranks(tmp_path, out=str(out), **options)
    assert touched == []
    vaekit.train(out=tmp_path / "one", **options)
    # the two-process run learns what one process learns (other noise draws, so not bit for bit) ...
    row2, row1 = rows(out)[0], rows(tmp_path / "one")[0]
    assert row2["step"] == row1["step"] == 21
    assert row2["val_recon"] == pytest.approx(row1["val_recon"], rel=0.05)
    # ... and the discriminator (its own optimizer) or the EMA codebook moved from where it started
    cfg = rundir.read_config(out)
    torch.manual_seed(cfg.train.seed)
    start, after = build_model(cfg.model).state_dict(), load_file(str(out / "model.safetensors"))
    names = [k for k in after if k.startswith("discriminator.") or k == "codebook.embedding"]
    assert names and all(not torch.equal(after[k], start[k]) for k in names)


def test_cli_launches_torchrun_and_only_rank_0_speaks(tmp_path, capfd):
    # the real entry point in this process (torchrun's launcher runs here; its 2 workers are fresh processes
    # whose output reaches this process's file descriptors)
    code, _, _ = run_cli(["train", "--nproc", "2", "--model", "ae", "--hidden", "32", "--epochs", "1", "--no-plots",
                          "--no-progress", "--batch-size", "431", "--out", tmp_path / "run"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert err.count("trained 1 epoch in") == 1 and out == ""
    assert not any(word in err.lower() for word in NOISE)  # no launcher or gloo log lines
    assert rows(tmp_path / "run")[0]["step"] == 4


def test_a_failing_worker_prints_its_error_and_no_launcher_report(tmp_path, capfd):
    with pytest.raises(SystemExit) as e:  # what `vaekit train --nproc 2 --batch-size 1 ...` runs
        launch(2, "cpu", ["--batch-size", "1", "--epochs", "1", "--out", str(tmp_path / "bad"), "--no-progress"])
    err = capfd.readouterr().err
    assert e.value.code == 2 and not any(word in err.lower() for word in NOISE)
    # both ranks refuse (torchrun may stop one before it prints): each says so at most once
    said = [err.count(f"{who} --batch-size 1 is the global batch, split over 2 processes")
            for who in ("error:", "error (process 1):")]
    assert 1 <= sum(said) and max(said) == 1
    assert not (tmp_path / "bad").exists()


def test_bad_launches_name_the_fix(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["train", "--nproc", "0", "--out", tmp_path / "r"], capsys)
    assert code == 2 and "--nproc must be at least 1" in err
    if not torch.cuda.is_available():
        code, _, err = run_cli(["train", "--nproc", "2", "--device", "cuda", "--out", tmp_path / "r"], capsys)
        assert code == 2 and "needs 2 GPUs" in err and "--device cpu" in err
    for env, words in (({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' must be an integer"),
                       ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 must be below WORLD_SIZE=2"),
                       ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR is not set"),
                       ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "x"},
                        "MASTER_PORT='x' must be an integer")):
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            with pytest.raises(VaekitError, match=words) as e:
                vaekit.train("digits", epochs=1, out=tmp_path / "r", **TINY)
            assert "torchrun --nproc-per-node" in str(e.value)
    with monkeypatch.context() as m:
        m.setenv("WORLD_SIZE", "2")
        m.setenv("RANK", "0")
        code, _, err = run_cli(["train", "--nproc", "2", "--out", tmp_path / "r"], capsys)
        assert code == 2 and "under torchrun drop --nproc" in err
    assert not (tmp_path / "r").exists()
    assert without_nproc(["--nproc", "2", "--epochs", "3", "--nproc=4", "--out", "x"]) == ["--epochs", "3", "--out", "x"]
