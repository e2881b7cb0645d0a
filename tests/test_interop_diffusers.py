"""vaekit <-> diffusers' AutoencoderKL (vaekit/interop/diffusers.py): both directions give equal encoder moments and
decoder outputs on the same input, a run survives export and re-import, and what cannot convert says why.

diffusers is a test-only dependency (the ``test`` extra, pinned in constraints.txt); without it these tests skip."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.app.evaluations import evaluate_run
from vaekit.app.workflows import encode_run
from vaekit.interop.diffusers import export_diffusers, import_diffusers

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the suite stays offline: from_pretrained reads local folders only
diffusers = None  # imported by the fixture below on the worker that runs this file, not at every collection (seconds)


@pytest.fixture(scope="module", autouse=True)
def _diffusers():
    global diffusers
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed: `pip install -c constraints.txt "
                                    "diffusers` (the test extra) runs these tests")

TOL = 1e-5


def small_diffusers(attention: bool = True, widths=(8, 16), groups: int = 8, channels: int = 3):
    torch.manual_seed(0)
    model = diffusers.AutoencoderKL(in_channels=channels, out_channels=channels, block_out_channels=widths,
                                    down_block_types=("DownEncoderBlock2D",) * len(widths),
                                    up_block_types=("UpDecoderBlock2D",) * len(widths), layers_per_block=1,
                                    norm_num_groups=groups, latent_channels=4, sample_size=16,
                                    mid_block_add_attention=attention)
    with torch.no_grad():  # GroupNorm affine and the zero-initialised parts get random values too
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def outputs_diffusers(model, x, z):
    with torch.no_grad():
        moments = model.quant_conv(model.encoder(x))
        return moments, model.decode(z).sample


def outputs_vaekit(model, x, z):
    with torch.no_grad():
        return model.encoder(x), model.decoder(z)


def assert_close(a, b):
    for u, v in zip(a, b):
        assert u.shape == v.shape and float((u - v).abs().max()) < TOL


@pytest.mark.parametrize("attention", [True, False])
def test_diffusers_to_vaekit_gives_equal_outputs(tmp_path, attention):
    theirs = small_diffusers(attention)
    theirs.save_pretrained(tmp_path / "d")
    ours = import_diffusers(tmp_path / "d", tmp_path / "run").model
    x, z = torch.rand(2, 3, 16, 16) * 2 - 1, torch.randn(2, 4, 8, 8)
    assert_close(outputs_diffusers(theirs, x, z), outputs_vaekit(ours, x, z))
    reopened = vaekit.open_run(tmp_path / "run").model  # the saved run holds the same weights
    assert_close(outputs_vaekit(reopened, x, z), outputs_vaekit(ours, x, z))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    np.savez(folder / "tiny.npz", x=np.random.default_rng(0).random((16, 3, 16, 16), dtype=np.float32))
    vaekit.train(str(folder / "tiny.npz"), recipe="autoencoder-kl-small", widths="32,64", downsample=2,
                 out=folder / "run", epochs=1, batch_size=8, progress=False)
    return folder


def test_vaekit_to_diffusers_and_back(trained, tmp_path):
    run = vaekit.open_run(trained / "run")
    export_diffusers(run, tmp_path / "d")
    theirs = diffusers.AutoencoderKL.from_pretrained(tmp_path / "d", low_cpu_mem_usage=False).eval()
    assert theirs.config.norm_num_groups == 32 and list(theirs.config.block_out_channels) == [32, 64]
    x, z = torch.rand(2, 3, 16, 16), torch.randn(2, 4, 8, 8)
    assert_close(outputs_diffusers(theirs, x, z), outputs_vaekit(run.model, x, z))
    back = import_diffusers(tmp_path / "d", tmp_path / "back")  # the round trip keeps the whole model
    a, b = run.model.state_dict(), back.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert back.config.model == run.config.model


def test_imported_run_evaluates_encodes_and_fine_tunes(tmp_path):
    small_diffusers().save_pretrained(tmp_path / "d")
    import_diffusers(tmp_path / "d", tmp_path / "run")
    data = tmp_path / "tiny.npz"
    np.savez(data, x=np.random.default_rng(1).random((16, 3, 16, 16), dtype=np.float32))
    with pytest.raises(VaekitError, match="imported and has no data of its own; pass --data"):
        evaluate_run(tmp_path / "run")
    assert np.isfinite(evaluate_run(tmp_path / "run", str(data), metrics=["elbo"])["elbo"])
    encode_run(tmp_path / "run", tmp_path / "z.npy", str(data))
    assert np.load(tmp_path / "z.npy").shape[1:] == (4, 8, 8)
    before = {k: v.clone() for k, v in vaekit.open_run(tmp_path / "run").model.state_dict().items()}
    with pytest.raises(VaekitError, match="--data"):
        vaekit.train(out=tmp_path / "run", resume=True, progress=False)
    model = vaekit.train(str(data), out=tmp_path / "run", resume=True, epochs=1, progress=False)
    after = model.state_dict()
    moved = max(float((after[k] - before[k]).abs().max()) for k in before)
    assert 0 < moved < 0.1  # it went on from the imported weights, not from a new initialisation
    assert (tmp_path / "run" / "imported.safetensors").is_file() and (tmp_path / "run" / "state.pt").is_file()


def test_what_cannot_convert_says_why(tmp_path, trained):
    small_diffusers().save_pretrained(tmp_path / "d")
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    (tmp_path / "d" / "config.json").write_text(json.dumps(dict(config, act_fn="gelu")))
    with pytest.raises(VaekitError, match="act_fn 'gelu'"):
        import_diffusers(tmp_path / "d", tmp_path / "r1")
    with pytest.raises(VaekitError, match="not a diffusers AutoencoderKL folder"):
        import_diffusers(tmp_path, tmp_path / "r2")
    (tmp_path / "d" / "config.json").write_text(json.dumps(config))
    with pytest.raises(VaekitError, match="not a multiple of the model's down-sampling factor 2"):
        import_diffusers(tmp_path / "d", tmp_path / "r3", image_size=15)
    vaekit.train("digits", network="conv", out=tmp_path / "conv", epochs=1, progress=False)
    with pytest.raises(VaekitError, match="cannot be exported to diffusers: its network is 'conv'"):
        export_diffusers(tmp_path / "conv", tmp_path / "out")
    vaekit.train(str(trained / "tiny.npz"), recipe="autoencoder-kl-small", widths="32,48", downsample=2,
                 out=tmp_path / "odd", epochs=1, batch_size=8, progress=False)
    with pytest.raises(VaekitError, match=r"GroupNorms have \[24, 32\] groups"):
        export_diffusers(tmp_path / "odd", tmp_path / "out")


def test_round_trip_through_the_cli(trained, tmp_path, capsys):
    from conftest import run_cli

    assert run_cli(["export", trained / "run", "--format", "diffusers", "--out", tmp_path / "d"], capsys)[0] == 0
    assert diffusers.AutoencoderKL.from_pretrained(tmp_path / "d", low_cpu_mem_usage=False).config.latent_channels == 4
    assert run_cli(["import-diffusers", tmp_path / "d", "--out", tmp_path / "back"], capsys)[0] == 0
    code, _, err = run_cli(["plot", tmp_path / "back", "reconstructions", "--data", trained / "tiny.npz"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["export", trained / "run", "--format", "tflite", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "--format 'tflite' is not known" in err
