"""Speed techniques: no host sync per step, bf16 autocast of the networks, torch.compile, channels-last
conv activations."""
import traceback

import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.objectives import elbo as elbo_module
from vaekit.train import trainer as trainer_module
from vaekit.train.acceleration import check_precision, compiled_networks, network_precision
from vaekit.train.watch import NonFiniteWatch, unchecked_distributions

SMALL = dict(hidden=[32], batch_size=256, progress=False)
STEPS_PER_EPOCH = 6  # 1294 training digits / batch 256


def test_watch_reports_the_first_non_finite_step_of_any_loss():
    watch = NonFiniteWatch(every=4)
    for step, value in enumerate([1.0, 2.0, float("inf"), float("nan")], start=1):
        watch.note("main", torch.tensor(value), step)
        watch.note("discriminator", torch.tensor(float("nan") if step == 4 else 0.5), step)
    assert watch.first_bad() == ("main", 3)
    assert [watch.due(s) for s in (3, 4, 8)] == [False, True, True]
    watch.reset()
    watch.note("main", torch.tensor(0.0), 5)
    assert watch.first_bad() is None


def test_a_training_epoch_reads_no_tensor_value_between_checks(tmp_path, monkeypatch):
    """Every read of a tensor's value in Python is a host sync on a GPU: count them in an epoch."""
    reads = {"n": 0}
    real_epoch = trainer_module.Trainer._train_epoch

    def counted(method):
        def wrapper(self, *args, **kwargs):
            if reads["on"]:
                reads["where"].append("sum_means" in [f.name for f in traceback.extract_stack(limit=4)])
            return method(self, *args, **kwargs)
        return wrapper

    for name in ("__bool__", "__float__", "__int__", "item", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, counted(getattr(torch.Tensor, name)))

    def epoch(self, *args):
        reads["on"] = 1
        try:
            return real_epoch(self, *args)
        finally:
            reads["on"] = 0

    reads.update(on=0, where=[])
    monkeypatch.setattr(trainer_module.Trainer, "_train_epoch", epoch)
    vaekit.train("digits", out=tmp_path / "r", epochs=1, **SMALL)
    # the watch is read after steps 100, 200, ... only: in an epoch of 6 steps the only reads are
    # the epoch's mean terms (elbo, recon, kl, loss), once, at its end
    assert reads["where"] == [True] * 4


def test_a_nan_is_reported_with_its_step_and_the_checkpoint_kept(tmp_path, monkeypatch):
    run = tmp_path / "r"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    saved = (run / "model.safetensors").read_bytes()
    real_call = elbo_module.ELBO.__call__
    calls = {"n": 0}

    def nan_at_step_3(self, model, x, y=None, kl_weight=1.0):
        out = real_call(self, model, x, y, kl_weight)
        calls["n"] += 1
        if calls["n"] == 1 + 3:  # call 1 is the preflight on two examples
            out.losses["main"] = out.losses["main"] * float("nan")
        return out

    monkeypatch.setattr(elbo_module.ELBO, "__call__", nan_at_step_3)
    with pytest.raises(VaekitError, match=rf"loss became nan or inf at epoch 2, step {STEPS_PER_EPOCH + 3};"):
        vaekit.train(out=run, resume=True, epochs=2, nan_retries=0, progress=False)
    assert (run / "model.safetensors").read_bytes() == saved


def test_argument_checks_are_off_only_inside_the_block():
    before = torch.distributions.Distribution._validate_args
    with unchecked_distributions():
        torch.distributions.Normal(torch.tensor(0.0), torch.tensor(-1.0))  # no check, no error
    with pytest.raises(ValueError):
        torch.distributions.Normal(torch.tensor(0.0), torch.tensor(-1.0), validate_args=True)
    assert torch.distributions.Distribution._validate_args == before


def test_bf16_runs_the_networks_in_bf16_and_hands_float32_on(tmp_path):
    model = vaekit.train("digits", out=tmp_path / "r", epochs=1, **SMALL)
    seen = []
    first_linear = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    first_linear.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        plain = model.encode(x).mean
        with network_precision(model, "bf16", torch.device("cpu")):
            mixed = model.encode(x).mean
        after = model.encode(x).mean
    assert seen == [torch.float32, torch.bfloat16, torch.float32]  # plain again after the block
    assert mixed.dtype == torch.float32 and torch.equal(plain, after)
    # bf16 keeps about 3 significant digits: close, but not equal
    assert 0 < (mixed - plain).abs().max() < 0.05 * plain.abs().max() + 0.05


def test_bf16_training_keeps_float32_weights_near_the_fp32_run(tmp_path):
    fp32 = vaekit.train("digits", out=tmp_path / "a", epochs=1, **SMALL)
    bf16 = vaekit.train("digits", out=tmp_path / "b", epochs=1, precision="bf16", **SMALL)
    a, b = fp32.state_dict(), bf16.state_dict()
    assert all(v.dtype == torch.float32 for v in b.values())
    gap = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert 0 < gap < 0.05


def test_compile_keeps_parameter_names_and_numbers(tmp_path):
    model = vaekit.train("digits", out=tmp_path / "r", epochs=1, **SMALL)
    names = list(model.state_dict())
    graphs = []

    def backend(graph, example_inputs):  # torch.compile's plumbing, recording each graph it compiles
        graphs.append(graph)
        return graph.forward

    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        before = model.encode(x).mean
        with compiled_networks(model, backend=backend):  # inductor is timed in benchmarks/
            during = model.encode(x).mean
            assert graphs  # the encoder ran compiled
        compiled = len(graphs)
        after = model.encode(x).mean
        model.encode(torch.rand(3, 1, 8, 8))  # a new shape would compile again, were it still compiled
    assert list(model.state_dict()) == names and torch.allclose(before, during, atol=1e-6)
    assert len(graphs) == compiled and torch.equal(before, after)  # eager again after
    assert "forward" not in vars(model.encoder) and "forward" not in vars(model.decoder)


def test_a_forward_that_raises_under_bf16_leaves_autocast_off():
    class Failing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.decoder(self.encoder(x).sum(1))  # (B,) into Linear(2, 2): a shape error

    model = Failing()
    with network_precision(model, "bf16", torch.device("cpu")):
        with pytest.raises(RuntimeError):
            model(torch.rand(3, 2))
        assert not torch.is_autocast_enabled("cpu")
        assert model.encoder(torch.rand(3, 2)).dtype == torch.float32  # ran in bf16, handed float32 on
    assert not torch.is_autocast_enabled("cpu")
    assert "forward" not in vars(model.encoder) and "forward" not in vars(model.decoder)


def test_unknown_precision_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(VaekitError, match="--precision must be one of fp32, bf16"):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(VaekitError, match="--precision must be one of fp32, bf16, got 'fp16'"):
        vaekit.train("digits", out=tmp_path / "r", epochs=1, precision="fp16", **SMALL)
    assert not (tmp_path / "r").exists()



def test_conv_networks_give_the_same_numbers_in_channels_last_order(monkeypatch):
    from vaekit.nn import conv

    torch.manual_seed(0)
    encoder, decoder = conv.ConvEncoder((1, 28, 28), (8, 16), 12), conv.ConvDecoder(4, (1, 28, 28), 1, (8, 16), 12)
    x, z = torch.rand(3, 1, 28, 28), torch.randn(3, 4)
    fast = encoder(x), decoder(z)
    monkeypatch.setattr(conv, "CHANNELS_LAST", torch.contiguous_format)
    plain = encoder(x), decoder(z)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fast, plain))
    assert fast[1].shape == (3, 1, 28, 28) and fast[1].is_contiguous()  # NCHW for the likelihood
    assert all(p.is_contiguous() for p in [*encoder.parameters(), *decoder.parameters()])  # checkpoints as before


def test_compile_without_a_cpp_compiler_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no compiler on it
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(VaekitError, match=r"--compile on the CPU needs a C\+\+ compiler .* or train without --compile"):
        vaekit.train("digits", out=tmp_path / "r", epochs=1, compile=True, **SMALL)
    assert not (tmp_path / "r").exists()
