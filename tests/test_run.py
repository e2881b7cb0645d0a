"""The run handle (vaekit/run.py): a run directory's config, data info, model, evaluations and samplers,
with the model a bare nn.Module."""
import json

import pytest
import torch

import vaekit
from vaekit import rundir
from vaekit.app.api import train_run
from vaekit.data.types import DataInfo
from vaekit.errors import VaekitError
from vaekit.run import Run

SMALL = dict(epochs=1, hidden=[16], latent_dim=2, batch_size=512, progress=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("handle") / "r"
    vaekit.train("digits", model="rae-l2", out=out, **SMALL)
    return out


def test_train_run_returns_the_handle_and_train_the_bare_model(tmp_path):
    run = train_run("digits", out=tmp_path / "r", **SMALL)
    assert isinstance(run, Run) and run.dir == tmp_path / "r" and run.name == "vae"
    assert run.info.shape == (1, 8, 8) and run.info.num_classes == 10 and run.objective == "elbo"
    for name in ("config", "info", "run_dir"):
        assert not hasattr(run.model, name), name   # nothing is attached to the network
    assert run.model.name == "vae"  # messages name the run's zoo variant


def test_open_run_holds_what_the_directory_holds(run_dir):
    run = vaekit.open_run(run_dir)
    assert run.config.model.variant == "rae-l2" and run.config.train.epochs == 1
    assert run.info == DataInfo.from_dict(run.config.data_info) and run.info.kind == "image"
    assert [row["epoch"] for row in run.metrics()] == [1]
    assert run.weights() == run_dir / rundir.WEIGHTS and run.weights("best") == run_dir / rundir.BEST
    loaded = vaekit.load(run_dir)
    for (name, a), (_, b) in zip(run.model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert not run.model.training and "rae-l2" in repr(run)


def test_evaluations_and_samplers_are_read_through_rundir(run_dir):
    from vaekit.app.evaluations import evaluate_run

    assert vaekit.open_run(run_dir).samplers == []
    evaluate_run(run_dir, metrics=["recon"], save=str(rundir.evaluation_path(run_dir)))
    fitted = vaekit.fit_sampler(run_dir, "gmm", components=2, iterations=3)
    run = vaekit.open_run(run_dir)
    saved = run.evaluations[f"digits:test:last:seed0:epoch{rundir.saved_epoch(run_dir)}"]
    assert saved["metrics"] == ["recon"] and saved["weights"] == rundir.weights_fingerprint(run_dir)
    assert run.samplers == ["gmm"]
    meta = json.loads(rundir.sampler_files(run_dir, "gmm")[0].read_text())
    assert meta["format"] == rundir.samplers.FORMAT and meta["weights"] == saved["weights"]
    torch.manual_seed(0)
    a = fitted.sample(5)
    torch.manual_seed(0)
    torch.testing.assert_close(run.load_sampler("gmm").sample(5), a)
    assert run.load_sampler("prior").needs_model  # the model's own prior needs no fit


def test_a_handle_loads_its_model_only_when_asked(run_dir, tmp_path):
    run = Run(run_dir)
    assert run._model is None and run.info.name == "digits"
    assert run.model is run.model  # loaded once
    with pytest.raises(VaekitError, match="checkpoint must be 'last' or 'best'"):
        vaekit.open_run(run_dir, checkpoint="middle")
    with pytest.raises(VaekitError, match="is not a vaekit run"):
        vaekit.open_run(tmp_path)
