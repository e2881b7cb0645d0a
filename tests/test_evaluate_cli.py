"""vaekit evaluate and compare: saved evaluations, reuse only when the numbers would match, errors."""
import json
import shutil

import numpy as np
import pytest
import torch

import vaekit
from vaekit import rundir
from vaekit.app.evaluations import evaluate_run, finite_or_null, save_evaluation
from vaekit.config import RunConfig, upgrade
from vaekit.errors import VaekitError

from conftest import run_cli


def key(run, seed=0):
    """Where evaluation.json keeps the test split's numbers of the run's last weights (their epoch in it)."""
    return rundir.evaluation_key({"data": "digits", "split": "test", "checkpoint": "last", "metrics_seed": seed,
                                  "epoch": rundir.saved_epoch(run)})


@pytest.fixture
def run(mlp_run, tmp_path):
    """A private copy of the session's MLP run (evaluations are written into it)."""
    out = tmp_path / "run"
    shutil.copytree(mlp_run, out, ignore=shutil.ignore_patterns("evaluation.json"))
    return out


def test_evaluate_saves_and_compare_reuses_only_for_the_same_weights(run, tmp_path, capsys):
    code, _, err = run_cli(["evaluate", run, "--metrics", "elbo"], capsys)
    assert code == 0, err
    saved = json.loads((run / "evaluation.json").read_text())[key(run)]
    assert saved["metrics"] == ["elbo"] and len(saved["weights"]) == 16
    # a saved entry with a recognisable marker: compare must reuse it, not recompute
    entries = json.loads((run / "evaluation.json").read_text())
    entries[key(run)]["elbo"] = 123.0
    (run / "evaluation.json").write_text(json.dumps(entries))
    code, out, err = run_cli(["compare", run, "--metrics", "elbo", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)[0]["elbo"] == 123.0
    # new weights (a retrained or resumed run): the saved numbers are stale and recomputed
    model = vaekit.load(run)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    rundir.save_weights(run / rundir.WEIGHTS, model)
    code, out, err = run_cli(["compare", run, "--metrics", "elbo", "--json"], capsys)
    row = json.loads(out)[0]
    assert code == 0 and row["elbo"] != 123.0 and row["elbo"] < 0
    entry = json.loads((run / "evaluation.json").read_text())[key(run)]
    assert entry["elbo"] == row["elbo"] and entry["weights"] != saved["weights"]


def test_compare_recomputes_when_metrics_or_options_differ(run, capsys):
    evaluate_run(run, metrics=["elbo"], save=str(run / "evaluation.json"))
    code, out, err = run_cli(["compare", run, "--metrics", "elbo,nll", "--k", "5", "--json"], capsys)
    row = json.loads(out)[0]
    assert code == 0, err
    assert row["iw_samples"] == 5 and row["log_likelihood"] >= row["elbo"] - 1.0
    entry = json.loads((run / "evaluation.json").read_text())[key(run)]
    assert set(entry["metrics"]) == {"elbo", "nll"} and entry["options"]["nll"] == {"k": 5}
    code, out, _ = run_cli(["compare", run, "--metrics", "nll", "--k", "7", "--json"], capsys)
    assert json.loads(out)[0]["iw_samples"] == 7  # another K: computed again
    code, table, _ = run_cli(["compare", run, "--metrics", "nll", "--k", "7"], capsys)
    assert "log_likelihood" in table and "bernoulli" in table and "mse" not in table  # only what was asked


def test_each_seed_keeps_its_own_saved_numbers(run):
    path = str(run / "evaluation.json")
    evaluate_run(run, metrics=["elbo", "recon"], save=path, seed=0)
    evaluate_run(run, metrics=["elbo"], save=path, seed=1)
    saved = json.loads((run / "evaluation.json").read_text())
    assert saved[key(run)]["metrics"] == ["elbo", "recon"] and "mse" in saved[key(run)]
    assert saved[key(run, 1)]["metrics"] == ["elbo"] and "mse" not in saved[key(run, 1)]


def test_nonfinite_numbers_become_null_and_unwritable_output_is_a_clear_error(tmp_path):
    result = finite_or_null({"elbo": float("nan"), "kl": 1.0, "run": "r"})
    assert result["elbo"] is None and result["nonfinite"] == ["elbo"]
    json.dumps(result, allow_nan=False)
    (tmp_path / "file").write_text("not a directory")  # (root may write anywhere: no chmod test)
    with pytest.raises(VaekitError, match=r"could not write .*e.json: .*file is a file, not a directory; .*Choose another path"):
        save_evaluation(tmp_path / "file" / "e.json", {**result, "data": "d", "split": "test", "checkpoint": "last"})


def test_options_for_a_metric_not_computed_are_refused(run, capsys):
    code, _, err = run_cli(["evaluate", run, "--metrics", "latent", "--set", "knn.k=3"], capsys)
    assert code == 2 and "part of the latent group" in err
    code, _, err = run_cli(["evaluate", run, "--metrics", "nope"], capsys)
    assert code == 2 and "unknown metric 'nope'" in err
    code, _, err = run_cli(["evaluate"], capsys)
    assert code == 2 and "needs a run directory" in err


def test_bits_per_dim_follow_the_evaluated_data_not_the_training_data(tmp_path):
    """A Bernoulli model trained on binary images has exact bits there, and none on digits' grey levels."""
    x = (vaekit.load_data("digits").train.x > 0.5).numpy().astype(np.uint8)
    np.save(tmp_path / "binary.npy", np.concatenate([x, x]))
    vaekit.train(str(tmp_path / "binary.npy"), hidden=[16], epochs=1, out=tmp_path / "b", progress=False)
    own = evaluate_run(tmp_path / "b", metrics=["elbo"])
    assert own["bits_per_dim_method"].startswith("exact")
    assert own["bits_per_dim"] == pytest.approx(-own["elbo"] / (64 * np.log(2)))
    other = evaluate_run(tmp_path / "b", source="digits", metrics=["elbo"])
    assert "bits_per_dim" not in other and "17 levels" in other["bits_per_dim_none"]


def test_format_2_gaussian_runs_keep_their_sigma():
    """Formats 1-2 meant sigma = 1 when none was given, and 'learned' was one sigma per value."""
    base = RunConfig().to_dict()
    base["format_version"] = 2
    base["data_info"] = {"kind": "table"}
    for lik, expected in ((Part_dict("gaussian", {}), {"sigma": "1.0"}),
                          (Part_dict("gaussian", {"sigma": "learned"}), {"sigma": "learned-per-value"}),
                          (Part_dict("auto", {}), {"sigma": "1.0"}),
                          (Part_dict("gaussian", {"sigma": 0.5}), {"sigma": 0.5}),
                          (Part_dict("bernoulli", {}), {})):
        d = json.loads(json.dumps(base))
        d["model"]["likelihood"] = lik
        assert upgrade(d, "test")["model"]["likelihood"]["args"] == expected, lik
    d = json.loads(json.dumps(base))
    d["data_info"] = {"kind": "image"}
    d["model"]["likelihood"] = Part_dict("auto", {})
    assert upgrade(d, "test")["model"]["likelihood"]["args"] == {}  # auto on images stays bernoulli


def Part_dict(name, args):
    return {"name": name, "args": args}


def test_validation_metrics_do_not_replace_the_objectives_terms(tmp_path):
    table = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32) * [1.0, 10.0, 100.0]
    np.save(tmp_path / "t.npy", table)
    vaekit.train(str(tmp_path / "t.npy"), hidden=[8], epochs=1, out=tmp_path / "r", progress=False,
                 sets=['train.val_metrics=[{"name": "elbo"}, {"name": "recon"}]'])
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["val_loss"] == pytest.approx(-row["val_elbo"], rel=1e-5)  # model units, as the objective reports
    assert row["val_mse"] > 0


def test_importance_sampling_chunks_are_capped_by_data_values():
    """Rows per chunk shrink with the example's size, so a 64x64 conv net stays in bounded memory."""
    from vaekit.contract.bounds import MAX_VALUES, importance_weight_parts
    from vaekit.config import ModelConfig, Part
    from vaekit.models import build_model

    model = build_model(ModelConfig(network=Part("mlp", {"hidden": [4]}), latent_dim=2, data_shape=[1, 64, 64])).eval()
    rows = []
    model.decoder.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    with torch.no_grad():
        importance_weight_parts(model, torch.rand(4, 1, 64, 64), k=300, max_rows=8192)
    assert max(rows) * 64 * 64 <= MAX_VALUES and sum(rows) == 1200


def test_a_deterministic_posterior_gets_one_sample_and_says_so(tmp_path):
    vaekit.train("digits", model="vqvae", epochs=1, out=tmp_path / "vq", progress=False)
    r = evaluate_run(tmp_path / "vq", metrics=["elbo", "nll"])
    assert r["iw_samples"] == 1 and "deterministic" in r["log_likelihood_note"]
    assert r["log_likelihood"] == pytest.approx(r["elbo"], abs=1e-3)


def test_evaluating_another_csv_uses_the_runs_label_column(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a.csv", "b.csv"):
        rows = ["x1,x2,species"] + [f"{rng.normal():.3f},{rng.normal():.3f},{'ab'[i % 2]}" for i in range(40)]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    vaekit.train(str(tmp_path / "a.csv"), label_column="species", hidden=[8], epochs=1, out=tmp_path / "r",
                 progress=False)
    r = evaluate_run(tmp_path / "r", source=str(tmp_path / "b.csv"), metrics=["elbo"])
    assert r["n"] == 8 and "original units" in r["units"]
