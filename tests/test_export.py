"""vaekit export --format onnx|torchscript|exported-program: the graphs match PyTorch, OnnxModel serves them
without torch. All 38 zoo variants: benchmarks/export_parity.py (README's table); here a representative set."""
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from conftest import run_cli, small_parts
from vaekit.errors import VaekitError
from vaekit.export.writers import export_run

# one variant per encoder-output family and prior family: gaussian + normal and the label input (cvae), a flow's
# base parameters (iaf-vae), concrete prior (gumbel-vae), normal + one-hot parts (jointvae), codebook (vqvae),
# point mass + full-covariance Gaussian (ae), mixture (mog-vae), a hierarchy's top prior (ladder)
REPRESENTATIVE = ["cvae", "iaf-vae", "gumbel-vae", "jointvae", "vqvae", "ae", "mog-vae", "ladder"]


def torch_outputs(run, which, inputs):
    """What the model itself gives: (mean, ...) of the encoder, the decoder's mean."""
    from vaekit.export.graphs import Decoder, Encoder, export_mode

    with export_mode(run.model) as model, torch.no_grad():
        graph = Encoder(model) if which == "encoder" else Decoder(model)
        return [t.numpy() for t in graph(*[torch.as_tensor(i) for i in inputs])]


def inputs_for(model, which, batch):
    from vaekit.export.graphs import example_inputs

    return [t.numpy() for t in example_inputs(model, which, batch, seed=100 + batch)]


@pytest.fixture(scope="module")
def onnx_exports(zoo_run, tmp_path_factory):
    import vaekit

    out = {}
    for name in REPRESENTATIVE:
        path = export_run(zoo_run(name), "onnx", tmp_path_factory.mktemp("onnx") / name)
        out[name] = (vaekit.open_run(zoo_run(name)), path)
    return out


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_onnx_matches_pytorch_at_batch_1_and_17(name, onnx_exports):
    import onnxruntime

    run, path = onnx_exports[name]
    spec = json.loads((path / "export.json").read_text())
    for which in ("encoder", "decoder"):
        session = onnxruntime.InferenceSession(str(path / f"{which}.onnx"), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        assert names == [i["name"] for i in spec[which]["inputs"]]
        for batch in (1, 17):
            feeds = inputs_for(run.model, which, batch)
            got = session.run(None, dict(zip(names, feeds)))
            for g, e in zip(got, torch_outputs(run, which, feeds), strict=True):
                assert g.shape == e.shape and g.shape[0] == batch
                assert np.abs(g - e).max() <= 1e-4, (name, which, batch)
        assert max(spec[which]["max_abs_diff"].values()) <= 1e-4


def test_onnx_model_serves_without_torch(onnx_exports):
    run, path = onnx_exports["cvae"]
    code = (f"import sys, numpy as np; from vaekit.export.onnx_backend import OnnxModel; m = OnnxModel({str(path)!r}); "
            "x = m.sample(3, label=2, seed=0); m.reconstruct(x, label=[0, 1, 2]); "
            "print(m.info()['variant'], x.shape, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cvae", "(3,", "1,", "8,", "8)", "False"] and out.stderr == ""


@pytest.mark.parametrize("name", ["cvae", "vqvae", "ae", "iaf-vae"])
def test_onnx_model_encodes_decodes_and_reconstructs_as_pytorch(name, onnx_exports):
    from vaekit.export.onnx_backend import OnnxModel

    run, path = onnx_exports[name]
    m, model = OnnxModel(path), run.model
    x = np.random.default_rng(0).random((5, *model.data_shape), dtype=np.float32)
    label = np.arange(5) % 10 if model.conditional else None
    c = None if label is None else torch.as_tensor(label)
    mean, var = m.encode(x, label)
    with torch.no_grad():
        np.testing.assert_allclose(mean, model.embed(torch.as_tensor(x), c).numpy(), atol=1e-4)
        np.testing.assert_allclose(m.reconstruct(x, label), model.reconstruct(torch.as_tensor(x), c).numpy(), atol=1e-4)
        if model.can("posterior_variance") and name != "iaf-vae":
            np.testing.assert_allclose(var, model.encode(torch.as_tensor(x), c).variance.numpy(), atol=1e-4)
    assert (var == 0).all() if model.deterministic_posterior else (var is None) == (name == "iaf-vae")
    assert m.info()["latent_shape"] == list(model.latent_shape)


@pytest.mark.parametrize("name", ["mog-vae", "gumbel-vae", "ae", "vqvae", "jointvae", "ladder"])
def test_numpy_prior_draws_as_the_model_does(name, onnx_exports):
    """The numpy sampler of each prior family against model.prior_sample: mean and std per latent value."""
    from vaekit.export.onnx_backend import sample_prior

    run, path = onnx_exports[name]
    spec = json.loads((path / "export.json").read_text())["prior"]
    ours = sample_prior(spec, 4000, np.random.default_rng(0)).reshape(4000, -1)
    torch.manual_seed(0)
    with torch.no_grad():
        theirs = run.model.prior_sample(4000).reshape(4000, -1).numpy()
    np.testing.assert_allclose(ours.mean(0), theirs.mean(0), atol=0.1)
    np.testing.assert_allclose(ours.std(0), theirs.std(0), atol=0.1, rtol=0.1)


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
def test_torch_formats_reload_and_match(fmt, zoo_run, tmp_path):
    import vaekit

    run = vaekit.open_run(zoo_run("cvae"))
    path = export_run(run, fmt, tmp_path / fmt)
    suffix = "pt" if fmt == "torchscript" else "pt2"
    for which in ("encoder", "decoder"):
        file = str(path / f"{which}.{suffix}")
        with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(file) if fmt == "torchscript" else torch.export.load(file).module()
        for batch in (1, 17):
            feeds = inputs_for(run.model, which, batch)
            with torch.no_grad():
                got = [t.numpy() for t in module(*[torch.as_tensor(f) for f in feeds])]
            for g, e in zip(got, torch_outputs(run, which, feeds), strict=True):
                assert g.shape[0] == batch and np.abs(g - e).max() <= 1e-4


def test_spatial_latent_exports_with_its_map_shape(tmp_path):
    """A resnet with a latent map: codes are (C, h, w) in the graphs and the contract."""
    from vaekit.data.types import DataInfo
    from vaekit.export.onnx_backend import OnnxModel
    from vaekit.run import Run

    from vaekit.app.options import apply_options, base_config
    from vaekit.models import build_model

    cfg = apply_options(base_config(), {"network": "resnet", "widths": [8, 16], "blocks": 1, "latent_channels": 2})
    cfg.model.data_shape = [1, 8, 8]
    torch.manual_seed(0)
    model = build_model(cfg.model)
    info = DataInfo("tiny", "image", (1, 8, 8))
    cfg.data_info = info.to_dict()
    spec = json.loads((export_run(Run(tmp_path, cfg, model.eval(), info), "onnx", tmp_path / "o") / "export.json")
                      .read_text())
    assert spec["latent"]["shape"] == [2, 4, 4] and spec["decoder"]["inputs"][0]["shape"] == ["batch", 2, 4, 4]
    assert OnnxModel(tmp_path / "o").sample(2, seed=1).shape == (2, 1, 8, 8)


def test_a_part_that_cannot_export_says_why(tmp_path):
    from vaekit.data.types import DataInfo
    from vaekit.run import Run

    cfg, model = small_parts("vae")
    model.prior.missing_capabilities = {"export": "its prior calls scipy"}
    cfg.data_info = DataInfo("tiny", "image", (1, 8, 8)).to_dict()
    with pytest.raises(VaekitError, match="^export does not apply to the VAE model: its prior calls scipy$"):
        export_run(Run(tmp_path, cfg, model, DataInfo("tiny", "image", (1, 8, 8))), "onnx", tmp_path / "o")


def test_a_data_dependent_branch_is_refused_not_exported(tmp_path):
    """Tracing keeps one side of a Python branch on values; the parity check at other inputs catches it."""
    from torch import nn

    from vaekit.data.types import DataInfo
    from vaekit.models import build_model
    from vaekit.run import Run

    class Branchy(nn.Module):
        out_dim = 64

        def forward(self, x, c=None):
            x = x.flatten(1)
            return x if float(x.mean()) > 0.5 else -x

    cfg, plain = small_parts("vae")
    model = build_model(cfg.model, encoder=Branchy(), decoder=plain.decoder)
    cfg.data_info = DataInfo("tiny", "image", (1, 8, 8)).to_dict()
    with pytest.raises(VaekitError, match="differs from PyTorch by"):
        export_run(Run(tmp_path, cfg, model.eval(), DataInfo("tiny", "image", (1, 8, 8))), "onnx", tmp_path / "o")


def test_cli_export_and_its_errors(mlp_run, tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(["export", mlp_run, "--format", "onnx", "--out", tmp_path / "o"], capsys)
    assert code == 0 and err.strip() == f"wrote {tmp_path / 'o'}"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    code, _, err = run_cli(["export", mlp_run, "--format", "onnx", "--out", tmp_path / "p"], capsys)
    assert code == 2 and err.strip() == ("error: --format onnx needs onnxruntime, which is not installed: "
                                         "pip install vaekit[export]")
    from vaekit.export.onnx_backend import OnnxModel

    with pytest.raises(VaekitError, match=r"pip install vaekit\[export\]"):
        OnnxModel(tmp_path / "o")


def test_a_full_covariance_prior_is_sampled_with_its_covariance():
    """z = mu + L eps has covariance L L^T (not L^T L): a prior with strong correlation tells them apart."""
    from vaekit.export.onnx_backend import sample_prior

    tril = np.array([[1.0, 0.0], [0.9, 0.3]])
    z = sample_prior({"kind": "gaussian", "loc": [0.5, -1.0], "scale_tril": tril.tolist()}, 40000,
                     np.random.default_rng(0))
    np.testing.assert_allclose(z.mean(0), [0.5, -1.0], atol=0.03)
    np.testing.assert_allclose(np.cov(z.T), tril @ tril.T, atol=0.04)


@pytest.mark.parametrize("variant,options", [
    ("vqvae", {}), ("rvq", {"network": "resnet", "widths": [8, 16], "blocks": 1, "latent_channels": 3}),
    ("fsq", {"network": "resnet", "widths": [8, 16], "blocks": 1}),
    ("vqgan", {"network": "resnet", "widths": [8, 16], "blocks": 1, "latent_channels": 3})])
def test_numpy_codes_are_the_models_codes_in_its_layout(variant, options):
    """With one likely code per position and stage, numpy draws exactly the codes model.prior_sample draws:
    the stages summed and a latent map's channels first, as the decoder reads them."""
    from vaekit.app.options import apply_options, base_config
    from vaekit.export.contract import prior_spec
    from vaekit.export.onnx_backend import sample_prior
    from vaekit.models import build_model

    cfg = apply_options(base_config(), {"model": variant, "latent_dim": 4, **(options or {"hidden": [32]})}, [])
    cfg.model.data_shape, cfg.model.num_classes = [1, 8, 8], 10
    model = build_model(cfg.model).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for name, buffer in model.codebook.named_buffers():
            if name.endswith("embedding"):
                buffer.copy_(torch.randn_like(buffer))
        pick = torch.randint(0, model.codes, (model.prior_logits.shape[0],))
        model.prior_logits.copy_(torch.nn.functional.one_hot(pick, model.codes) * 60.0 - 30.0)
        theirs = model.prior_sample(3).reshape(3, -1).numpy()
    ours = sample_prior(json.loads(json.dumps(prior_spec(model))), 3, np.random.default_rng(0))
    assert ours.shape == theirs.shape and len(set(theirs[0].round(4).tolist())) > 2
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_the_wrapped_normal_on_the_ball_is_sampled_as_torch_samples_it():
    """pvae's prior N^W(0, I) and a wrapped normal away from the origin: numpy against torch's rsample."""
    from conftest import small_model
    from vaekit.distributions.poincare import WrappedNormal
    from vaekit.export.contract import distribution_spec, prior_spec
    from vaekit.export.onnx_backend import sample_prior

    model = small_model("pvae")
    loc = torch.tensor([0.5, -0.3, 0.1, 0.2], dtype=torch.float64)
    away = WrappedNormal(loc, torch.tensor([0.3, 0.6, 0.2, 0.4], dtype=torch.float64), curvature=1.5)
    for spec, dist in ((prior_spec(model), model.prior()), (distribution_spec(away), away)):
        assert spec["kind"] == "wrapped-normal"
        ours = sample_prior(spec, 40000, np.random.default_rng(0)).astype(np.float64)
        torch.manual_seed(0)
        theirs = dist.sample((40000,)).reshape(40000, -1).double().numpy()
        np.testing.assert_allclose(ours.mean(0), theirs.mean(0), atol=0.01)
        np.testing.assert_allclose(ours.std(0), theirs.std(0), atol=0.01)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1).mean(), np.linalg.norm(theirs, axis=1).mean(),
                                   atol=0.005)
