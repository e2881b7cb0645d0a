"""Weight averaging (--ema; vaekit/train/ema.py): after N steps the average equals the recurrence
computed by hand from the weights each step left; a discriminator group is left out unless asked;
validation and model.safetensors see the average, raw.safetensors and --checkpoint raw the weights as
trained; resume (2 + 1 epochs = 3) is bit-exact for both."""
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit import rundir
from vaekit.app.options import apply_options, base_config
from vaekit.errors import VaekitError
from vaekit.train import validation as validation_module
from vaekit.train.ema import WeightAverage
from torch.optim.optimizer import register_optimizer_step_post_hook

from conftest import run_cli, small_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from kill_resume import differences  # noqa: E402  (every bit of two finished runs)

DECAY = 0.5  # d_t = t / (t + 9) reaches it at step 9: both the warm-up and the constant decay are seen
SMALL = dict(hidden=[8], latent_dim=2, progress=False, seed=2, ema=DECAY)


def by_hand(weights, d):
    """ema_1 = w_1; ema_t = d_t ema_{t-1} + (1 - d_t) w_t with d_t = min(d, (1 + s) / (10 + s)), s = t - 1
    (diffusers' EMAModel.get_decay), in float64."""
    avg = weights[0].double()
    for t, w in enumerate(weights[1:], 2):
        d_t = min(d, t / (t + 9))
        avg = d_t * avg + (1 - d_t) * w.double()
    return avg


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, request):
    """One epoch of 11 steps (batch 128) with --ema 0.5: the weights after every optimizer step, and
    the weights each validation saw."""
    run = tmp_path_factory.mktemp("ema") / "run"
    steps, validated = [], []

    def after_step(optimizer, args, kwargs):
        steps.append([p.detach().clone() for g in optimizer.param_groups for p in g["params"]])

    real_validate = validation_module.validate

    def spy(model, *args):
        validated.append({k: p.detach().clone() for k, p in model.named_parameters()})
        return real_validate(model, *args)

    handle = register_optimizer_step_post_hook(after_step)
    validation_module.validate = spy
    try:
        model = vaekit.train("digits", out=run, epochs=1, batch_size=128, **SMALL)
    finally:
        handle.remove()
        validation_module.validate = real_validate
    names = [name for name, _ in model.named_parameters()]  # the one group's order
    return run, model, [dict(zip(names, step)) for step in steps], validated


def test_the_average_after_n_steps_is_the_recurrence_by_hand(recorded):
    run, model, steps, _ = recorded
    assert len(steps) == 11
    averaged, raw = load_file(str(run / rundir.WEIGHTS)), load_file(str(run / rundir.RAW))
    for name in steps[0]:
        expected = by_hand([step[name] for step in steps], DECAY)
        torch.testing.assert_close(averaged[name].double(), expected, rtol=0, atol=1e-6)
        assert torch.equal(raw[name], steps[-1][name])  # raw.safetensors: the weights as trained
        assert not torch.equal(averaged[name], raw[name])
    state = torch.load(run / rundir.STATE, weights_only=True)  # state.pt holds both
    assert all(torch.equal(state["ema"][k], averaged[k]) and torch.equal(state["model"][k], raw[k])
               for k in state["ema"])
    assert all(torch.equal(p, averaged[k]) for k, p in model.state_dict().items())  # vaekit.train's model


def test_validation_and_the_best_checkpoint_use_the_average(recorded):
    run, _, _, validated = recorded
    averaged, best = load_file(str(run / rundir.WEIGHTS)), load_file(str(run / rundir.BEST))
    assert len(validated) == 1 and all(torch.equal(w, averaged[k]) for k, w in validated[0].items())
    assert all(torch.equal(best[k], averaged[k]) for k in averaged)


def test_checkpoint_raw_gives_the_weights_as_trained(recorded, capsys):
    run, _, _, _ = recorded
    raw, averaged = load_file(str(run / rundir.RAW)), load_file(str(run / rundir.WEIGHTS))
    for checkpoint, expected in (("last", averaged), ("raw", raw)):
        handle = vaekit.open_run(run, checkpoint=checkpoint)
        assert all(torch.equal(p, expected[k]) for k, p in handle.model.state_dict().items())
    assert all(torch.equal(p, raw[k]) for k, p in vaekit.load(run, checkpoint="raw").state_dict().items())
    assert vaekit.open_run(run, checkpoint="raw").weights() == run / rundir.RAW
    code, out, _ = run_cli(["evaluate", run, "-m", "elbo", "--checkpoint", "raw", "--json"], capsys)
    assert code == 0 and json.loads(out)["checkpoint"] == "raw"
    code, out, _ = run_cli(["evaluate", run, "-m", "elbo", "--json"], capsys)
    saved = rundir.read_evaluations(run / rundir.EVALUATION)
    assert len(saved) == 2 and len({value["elbo"] for value in saved.values()}) == 2  # two sets of weights
    code, _, _ = run_cli(["plot", run, "samples", "--checkpoint", "raw", "--out", run / "raw.png"], capsys)
    assert code == 0 and (run / "raw.png").is_file()


def test_without_ema_raw_is_the_last_checkpoint(mlp_run):
    assert not (mlp_run / rundir.RAW).exists()
    last, raw = vaekit.open_run(mlp_run), vaekit.open_run(mlp_run, checkpoint="raw")
    assert raw.weights() == mlp_run / rundir.WEIGHTS
    assert all(torch.equal(a, b) for a, b in zip(last.model.state_dict().values(), raw.model.state_dict().values()))
    assert "ema" not in torch.load(mlp_run / rundir.STATE, weights_only=True)


def test_resume_is_bit_exact_for_raw_and_averaged_weights(tmp_path):
    reference, split = tmp_path / "reference", tmp_path / "split"
    vaekit.train("digits", out=reference, epochs=3, batch_size=256, **SMALL)
    vaekit.train("digits", out=split, epochs=2, batch_size=256, **SMALL)
    vaekit.train(out=split, resume=True, epochs=3, progress=False)
    assert differences(split, reference) == []
    state = torch.load(split / rundir.STATE, weights_only=True)
    assert set(state["ema"]) == {k for k, _ in vaekit.load(split).named_parameters()}


def test_a_discriminator_is_averaged_only_when_asked():
    model = small_model("factorvae")
    groups = model.parameter_groups()
    disc = {id(p) for p in groups["discriminator"]}
    names = {k for k, p in model.named_parameters() if id(p) not in disc}
    assert set(WeightAverage(model, groups, 0.9).params) == names
    assert set(WeightAverage(model, groups, 0.9, discriminator=True).params) == {k for k, _ in model.named_parameters()}
    assert WeightAverage(model, groups, None).params == {}  # off: nothing copied, nothing done


def test_the_option_is_a_flag_a_keyword_and_a_set_path():
    assert apply_options(base_config(), {"ema": 0.99}).train.ema == 0.99
    assert apply_options(base_config(), {}, ["train.ema=0.999", "train.ema_discriminator=true"]).train.ema == 0.999
    for bad in (1.5, 0, -0.1):
        with pytest.raises(VaekitError, match=r"--ema takes a decay between 0 and 1"):
            apply_options(base_config(), {"ema": bad})
    code, _, _ = run_cli(["train", "--ema", "2", "--out", "nowhere", "--no-progress"], None)
    assert code != 0
