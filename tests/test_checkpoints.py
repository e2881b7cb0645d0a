"""Checkpoints inside an epoch (--checkpoint-every, Ctrl-C/SIGTERM) resume bit for bit; a nan or inf
loss rolls training back to the last good state with a lower learning rate, a bounded number of
times, and every such event is a row of metrics.jsonl."""
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.errors import Interrupted, VaekitError
from vaekit.objectives import elbo as elbo_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from kill_resume import differences  # noqa: E402  (the SIGKILL test's comparison of two finished runs)

SMALL = dict(hidden=[32], batch_size=256, progress=False, seed=5)
STEPS = 6  # 1294 training digits / batch 256


def lines(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def metric_rows(run):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in lines(run) if "event" not in row]


def events(run):
    return [row for row in lines(run) if "event" in row]


def call_of(step, first_epoch=1):
    """The objective call of training step ``step``: call 1 is the preflight on two examples, and
    each epoch's validation is one call (180 digits)."""
    return 1 + step + (step - 1) // STEPS - (first_epoch - 1)


def patch_elbo(monkeypatch, at_call):
    """Run ``at_call(n, out, model)`` on the n-th objective call."""
    real_call = elbo_module.ELBO.__call__
    calls = {"n": 0}

    def call(self, model, x, y=None, kl_weight=1.0):
        out = real_call(self, model, x, y, kl_weight)
        calls["n"] += 1
        at_call(calls["n"], out, model)
        return out

    monkeypatch.setattr(elbo_module.ELBO, "__call__", call)
    return lambda: monkeypatch.setattr(elbo_module.ELBO, "__call__", real_call)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Three epochs without interruption."""
    run = tmp_path_factory.mktemp("ref") / "run"
    vaekit.train("digits", out=run, epochs=3, **SMALL)
    return run


def test_ctrl_c_saves_mid_epoch_and_resume_is_bit_exact(tmp_path, monkeypatch, reference):
    run = tmp_path / "run"
    stop = call_of(STEPS + 2)  # the 2nd step of epoch 2
    before = signal.getsignal(signal.SIGINT)  # Python's default_int_handler; SIG_IGN in a background job

    def ctrl_c(n, out, model):
        if n == stop:
            os.kill(os.getpid(), signal.SIGINT)  # the handler notes it; the step finishes, then the loop saves

    restore = patch_elbo(monkeypatch, ctrl_c)
    with pytest.raises(Interrupted, match=rf"interrupted by Ctrl-C; the run is saved \(after 1 epoch and 2 batches, "
                                          rf"step {STEPS + 2}\): "
                                          rf"continue with `vaekit train --out {run} --resume`"):
        vaekit.train("digits", out=run, epochs=3, **SMALL)
    restore()
    state = torch.load(run / "state.pt", weights_only=True)
    assert (state["epoch"], state["step"], state["batch"]) == (1, STEPS + 2, 2)
    assert [e["event"] for e in events(run)] == ["interrupted"] and events(run)[0]["signal"] == "Ctrl-C"
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
    vaekit.train(out=run, resume=True, progress=False)
    assert [(e["event"], e["epoch"], e["batch"], e["step"]) for e in events(run)] == [
        ("interrupted", 1, 2, STEPS + 2), ("resumed", 1, 2, STEPS + 2)]  # the message's numbers
    assert differences(run, reference) == []  # weights, states, RNG, metric rows: every bit


def test_checkpoint_every_n_steps_keeps_a_crash_to_n_steps(tmp_path, monkeypatch, reference):
    run = tmp_path / "run"

    def crash(n, out, model):
        if n == call_of(2 * STEPS + 5):  # step 17, in epoch 3: the last checkpoint was step 16
            raise KeyboardInterrupt  # a crash the trainer does not catch

    restore = patch_elbo(monkeypatch, crash)
    with pytest.raises(KeyboardInterrupt):
        vaekit.train("digits", out=run, epochs=3, checkpoint_every=4, **SMALL)
    restore()
    state = torch.load(run / "state.pt", weights_only=True)
    assert (state["epoch"], state["step"], state["batch"]) == (2, 16, 4)
    assert len(state["sums"]) == 1 and state["sums"][0][1] == 4 * 256  # the epoch's running sums, 4 batches
    # model.safetensors stays the last completed epoch's
    assert load_file(str(run / "model.safetensors"), device="cpu").keys() == state["model"].keys()
    vaekit.train(out=run, resume=True, progress=False)
    assert differences(run, reference) == []  # weights, states, RNG, metric rows: every bit


def test_a_nan_rolls_back_with_a_halved_learning_rate_and_training_goes_on(tmp_path, monkeypatch):
    run = tmp_path / "run"

    def nan_once(n, out, model):
        if n == call_of(STEPS + 3):  # step 9, in epoch 2
            out.losses["main"] = out.losses["main"] * float("nan")

    restore = patch_elbo(monkeypatch, nan_once)
    vaekit.train("digits", out=run, epochs=3, lr=1e-3, **SMALL)
    restore()
    (event,) = events(run)
    assert event["event"] == "rollback" and event["reason"] == "the loss became nan or inf"
    # read at the end of epoch 2; back to the end of epoch 1
    assert (event["at_epoch"], event["at_step"], event["epoch"], event["step"]) == (2, STEPS + 3, 1, STEPS)
    assert event["lr"] == [5e-4]
    assert [row["epoch"] for row in metric_rows(run)] == [1, 2, 3]  # epoch 2 once, after the rollback
    state = torch.load(run / "state.pt", weights_only=True)
    assert state["optimizers"]["main"]["param_groups"][0]["lr"] == 5e-4 and state["rollbacks"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_a_lasting_nan_stops_after_the_retries_with_what_happened(tmp_path, monkeypatch):
    run = tmp_path / "run"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    saved = (run / "model.safetensors").read_bytes()

    def nan_from_epoch_2(n, out, model):
        if n > 1:  # every training step of the resumed run (its preflight is call 1)
            out.losses["main"] = out.losses["main"] * float("nan")

    patch_elbo(monkeypatch, nan_from_epoch_2)
    with pytest.raises(VaekitError, match=r"the loss became nan or inf at epoch 2, step 7 after 2 rollbacks, with "
                                          r"the learning rate now 0.00025; try a lower --lr or --grad-clip 1.0. The "
                                          r"last good checkpoint \(after 1 epoch, step 6\) is kept in the run directory"):
        vaekit.train(out=run, resume=True, epochs=3, nan_retries=2, progress=False)
    assert [e["event"] for e in events(run)] == ["resumed", "rollback", "rollback", "diverged"]
    assert [e["lr"] for e in events(run)[1:3]] == [[5e-4], [2.5e-4]]
    assert (run / "model.safetensors").read_bytes() == saved
    assert torch.load(run / "state.pt", weights_only=True)["epoch"] == 1


def test_a_non_finite_gradient_norm_is_caught_even_when_the_loss_is_finite(tmp_path, monkeypatch):
    def infinite_gradient(n, out, model):
        if n == call_of(STEPS + 3):  # sqrt(0) = 0 adds nothing to the loss; its derivative at 0 is inf
            p = next(model.parameters())
            out.losses["main"] = out.losses["main"] + torch.sqrt(p - p.detach()).sum()

    run = tmp_path / "run"
    patch_elbo(monkeypatch, infinite_gradient)
    with pytest.raises(VaekitError, match=rf"the gradient norm became nan or inf at epoch 2, step {STEPS + 3};"):
        vaekit.train("digits", out=run, epochs=2, grad_clip=5.0, nan_retries=0, **SMALL)
    assert events(run)[-1]["reason"] == "the gradient norm became nan or inf"


def test_a_finished_run_resumed_without_epochs_does_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    before = (run / "state.pt").read_bytes()
    model = vaekit.train(out=run, resume=True, progress=False)  # a job requeued after it ended
    assert "already trained 1 epochs: nothing to do" in capsys.readouterr().err
    assert (run / "state.pt").read_bytes() == before and isinstance(model, vaekit.Model)


def test_resume_removes_the_temp_file_of_a_write_cut_short(tmp_path):
    run = tmp_path / "run"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    (run / ".state.pt.abcd1234.tmp").write_bytes(b"half a checkpoint")
    (run / "plots").mkdir(exist_ok=True)
    (run / "plots" / ".latent.png.abcd1234.tmp").write_bytes(b"half a plot")
    vaekit.train(out=run, resume=True, epochs=2, progress=False)
    assert not list(run.glob(".*.tmp")) and not list((run / "plots").glob(".*.tmp"))


def test_a_run_killed_before_its_first_checkpoint_starts_over_without_the_temp_file_it_left(tmp_path):
    # what a first start killed while writing its first state.pt leaves: config.json and the temp
    run = tmp_path / "run"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    for path in run.iterdir():
        if path.name != "config.json":
            path.unlink()
    (run / ".state.pt.abcd1234.tmp").write_bytes(b"half a checkpoint")
    vaekit.train(out=run, resume=True, progress=False)  # no state.pt: the run starts over
    assert (run / "state.pt").exists() and not list(run.glob(".*.tmp"))


def test_a_first_start_killed_while_writing_its_config_leaves_no_temp_file_once_trained(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".config.json.abcd1234.tmp").write_text("{")  # all such a kill leaves: no config.json, so no run yet
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    assert (run / "config.json").exists() and not list(run.glob(".*.tmp"))


@pytest.mark.parametrize("option, value, message", [
    ("checkpoint_every", 0, "--checkpoint-every must be at least 1 step, got 0"),
    ("nan_retries", -1, "--nan-retries must be 0 or more, got -1"),
])
def test_bad_reliability_options_are_refused(tmp_path, option, value, message):
    with pytest.raises(VaekitError, match=message):
        vaekit.train("digits", out=tmp_path / "r", epochs=1, **{option: value}, **SMALL)
    assert not (tmp_path / "r").exists()
