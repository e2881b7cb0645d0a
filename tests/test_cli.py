"""End-to-end: the `vaekit` command on digits — train, evaluate, sample, reconstruct, encode, plot, resume."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from vaekit.rundir import read_metrics


def test_help_of_every_command_has_an_example(capsys):
    for command in ["train", "evaluate", "sample", "reconstruct", "encode", "plot", "demo", "models", "export",
                    "import-diffusers"]:
        code, out, _ = run_cli([command, "--help"], capsys)
        assert code == 0 and "Example: vaekit " + command in " ".join(out.split()), command


def test_evaluate_json_and_table(mlp_run, capsys):
    code, out, _ = run_cli(["evaluate", mlp_run, "--metrics", "elbo,recon", "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["n"] == 359 and result["split"] == "test"
    assert result["elbo"] == pytest.approx(-(result["recon"] + result["kl"]), rel=1e-6)
    assert 0 < result["kl"] < 20 and 0 < result["mse"] < 0.2
    # Bernoulli on digits' 17 grey levels is not a distribution over them: no bits per dimension
    assert "bits_per_dim" not in result and "17" in result["bits_per_dim_none"]
    # same seed: same numbers; the table prints the same ELBO
    code, out2, _ = run_cli(["evaluate", mlp_run, "--json"], capsys)
    assert json.loads(out2)["elbo"] == result["elbo"]
    code, table, _ = run_cli(["evaluate", mlp_run], capsys)
    assert code == 0 and f"{result['elbo']:.4f}" in table


def test_sample_png_and_npy(mlp_run, tmp_path, capsys):
    png, npy = tmp_path / "s.png", tmp_path / "s.npy"
    code, _, err = run_cli(["sample", mlp_run, "--n", "9", "--out", png, "--npy", npy], capsys)
    assert code == 0, err
    x = np.load(npy)
    assert x.shape == (9, 1, 8, 8) and 0 <= x.min() and x.max() <= 1
    with Image.open(png) as image:
        w, h = image.size
    assert w == h and w >= 3 * 8


def test_reconstruct_and_encode(mlp_run, tmp_path, capsys):
    code, _, err = run_cli(["reconstruct", mlp_run, "--n", "8", "--out", tmp_path / "r.png"], capsys)
    assert code == 0, err
    assert (tmp_path / "r.png").exists()
    code, _, err = run_cli(["encode", mlp_run, "--out", tmp_path / "z.npy", "--variance"], capsys)
    assert code == 0, err
    mu, var = np.load(tmp_path / "z.npy"), np.load(tmp_path / "z_var.npy")
    assert mu.shape == (359, 2) and var.shape == (359, 2) and (var > 0).all()
    code, _, err = run_cli(["encode", mlp_run, "--out", tmp_path / "z.csv", "--split", "test"], capsys)
    assert code == 0, err
    lines = (tmp_path / "z.csv").read_text().splitlines()
    assert lines[0] == "mu_0,mu_1,label" and len(lines) == 360
    first = [float(v) for v in lines[1].split(",")]
    assert first[:2] == pytest.approx(mu[0].tolist(), rel=1e-5)


@pytest.mark.parametrize("kind", ["latent", "manifold", "curves", "samples", "reconstructions"])
def test_plots(mlp_run, kind, capsys):
    code, _, err = run_cli(["plot", mlp_run, kind], capsys)
    assert code == 0, err
    with Image.open(mlp_run / "plots" / f"{kind}.png") as image:
        assert image.size[0] > 200 and image.size[1] > 200


def test_cvae_sample_chosen_label_and_tsne_map(cvae_run, tmp_path, capsys):
    code, _, err = run_cli(["sample", cvae_run, "--label", "3", "--n", "4", "--npy", tmp_path / "t.npy"], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "t.npy").shape == (4, 1, 8, 8)
    code, _, err = run_cli(["sample", cvae_run, "--n", "4"], capsys)
    assert code == 2 and "conditional VAE" in err and "--label" in err
    # t-SNE's cost grows with the points: the 144 validation examples, not the 359 test ones
    code, _, err = run_cli(["plot", cvae_run, "latent", "--method", "tsne", "--split", "val", "--out",
                            tmp_path / "t.png"], capsys)
    assert code == 0, err
    assert (tmp_path / "t.png").exists()
    code, _, err = run_cli(["plot", cvae_run, "manifold", "--label", "7", "--out", tmp_path / "m.png"], capsys)
    assert code == 0, err


def test_resume_through_the_cli(tmp_path, capsys):
    out = tmp_path / "r"
    base = ["train", "--data", "digits", "--hidden", "16", "--out", out, "--no-progress", "--no-plots"]
    assert run_cli(base + ["--epochs", "1"], capsys)[0] == 0
    code, _, err = run_cli(["train", "--out", out, "--resume", "--epochs", "2", "--no-progress", "--no-plots"], capsys)
    assert code == 0, err
    assert [row["epoch"] for row in read_metrics(out / "metrics.jsonl")] == [1, 2]  # event rows left out
    code, _, err = run_cli(["train", "--out", out, "--resume", "--lr", "0.1", "--no-plots"], capsys)
    assert code == 2 and "only --epochs" in err


@pytest.mark.parametrize("args,needle", [
    (["train", "--data", "nosuchset", "--epochs", "1"], "nosuchset"),
    (["train", "--recipe", "nosuch", "--epochs", "1"], "unknown recipe 'nosuch'"),
    (["train", "--data", "/no/such/file.npy", "--epochs", "1"], "/no/such/file.npy"),
    (["train", "--hidden", "a,b", "--epochs", "1"], "--hidden takes positive comma-separated integers"),
    (["evaluate", "/no/such/run"], "does not exist"),
    (["plot", ".", "curves"], "is not a vaekit run"),
])
def test_user_mistakes_are_one_line_errors(args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(args + (["--no-progress"] if args[0] == "train" else []), capsys)
    assert code == 2 and needle in err and "Traceback" not in err


def test_data_of_the_wrong_shape_for_a_run(mlp_run, tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", np.random.default_rng(0).random((20, 1, 5, 5)).astype("float32"))
    code, _, err = run_cli(["encode", mlp_run, "--data", tmp_path / "wrong.npy", "--out", tmp_path / "z.npy"], capsys)
    assert code == 2 and "wrong.npy" in err and "(1, 8, 8)" in err


def test_nan_in_data_is_refused(tmp_path, capsys):
    x = np.random.default_rng(0).random((50, 4)).astype("float32")
    x[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", x)
    code, _, err = run_cli(["train", "--data", tmp_path / "nan.npy", "--likelihood", "gaussian", "--epochs", "1",
                            "--out", tmp_path / "r", "--no-progress"], capsys)
    assert code == 2 and "nan.npy" in err and "NaN" in err
    assert not (tmp_path / "r" / "model.safetensors").exists()


def test_corrupted_checkpoint_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli(["train", "--hidden", "16", "--epochs", "1", "--out", out, "--no-progress", "--no-plots"],
                   capsys)[0] == 0
    (out / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    code, _, err = run_cli(["evaluate", out], capsys)
    assert code == 2 and "corrupted" in err and "model.safetensors" in err
    (out / "state.pt").write_bytes(b"not a zip")
    code, _, err = run_cli(["train", "--out", out, "--resume", "--epochs", "2", "--no-progress"], capsys)
    assert code == 2 and "state.pt" in err and "corrupted" in err


def test_console_entry_point_prints_no_traceback(tmp_path):
    exe = [sys.executable, "-m", "vaekit.app.cli"]
    proc = subprocess.run(exe + ["evaluate", str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_a_command_s_process_ends_without_collecting_what_its_imports_built():
    """Its exit freezes every object (gc.freeze) before the interpreter's last collections, which otherwise walk
    torch's import graph for a second or more; a callback registered before main runs after that freeze."""
    code = ("import atexit, gc, sys\natexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "from vaekit.app.cli import main\nsys.argv = ['vaekit', '--version']\nmain()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "frozen True", done.stdout + done.stderr


def test_table_round_trip_in_original_units(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 400
    label = rng.integers(0, 2, n)
    a = 100 + 10 * rng.standard_normal(n) + 20 * label
    b = -5 + 0.1 * rng.standard_normal(n)
    rows = ["height,offset,kind"] + [f"{x:.4f},{y:.4f},{'cat' if k else 'dog'}" for x, y, k in zip(a, b, label)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", tmp_path / "t.csv", "--label-column", "kind", "--likelihood",
                            "gaussian", "--hidden", "16", "--epochs", "30", "--lr", "0.01", "--out", out,
                            "--no-progress"], capsys)
    assert code == 0, err
    assert (out / "plots" / "latent.png").exists() and not (out / "plots" / "manifold.png").exists()
    code, _, err = run_cli(["sample", out, "--n", "500", "--npy", tmp_path / "s.npy"], capsys)
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (500, 2)
    assert abs(s[:, 0].mean() - a.mean()) < 10 and abs(s[:, 1].mean() + 5) < 0.1  # original units
    code, _, err = run_cli(["reconstruct", out, "--n", "50", "--npy", tmp_path / "r.npy"], capsys)
    assert code == 0, err
    r, o = np.load(tmp_path / "r.npy"), np.load(tmp_path / "r_original.npy")
    assert r.shape == o.shape == (50, 2) and abs(o[:, 1].mean() + 5) < 0.1
    assert np.abs(r[:, 0] - o[:, 0]).mean() < np.abs(o[:, 0] - o[:, 0].mean()).mean()  # beats the mean
    code, _, err = run_cli(["plot", out, "manifold"], capsys)
    assert code == 2 and "table" in err


def test_ctrl_c_keeps_the_last_epoch_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from vaekit.objectives import elbo as elbo_module

    out = tmp_path / "r"
    base = ["--hidden", "16", "--out", out, "--no-progress", "--no-plots"]
    assert run_cli(["train", "--epochs", "1", *base], capsys)[0] == 0
    real_call = elbo_module.ELBO.__call__
    calls = {"n": 0}

    def interrupt_in_epoch_two(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(elbo_module.ELBO, "__call__", interrupt_in_epoch_two)
    code, _, err = run_cli(["train", "--out", out, "--resume", "--epochs", "2", "--no-progress", "--no-plots"],
                           capsys)
    assert code == 130 and f"vaekit train --out {out} --resume" in err and "Traceback" not in err
    monkeypatch.setattr(elbo_module.ELBO, "__call__", real_call)
    code, _, err = run_cli(["train", "--out", out, "--resume", "--epochs", "2", "--no-progress", "--no-plots"],
                           capsys)
    assert code == 0, err
    assert [row["epoch"] for row in read_metrics(out / "metrics.jsonl")] == [1, 2]  # event rows left out


def test_resume_refuses_a_different_dataset(mlp_run, capsys):
    code, _, err = run_cli(["train", "--out", mlp_run, "--resume", "--data", "mnist", "--no-plots"], capsys)
    assert code == 2 and "not --data" in err


def test_evaluate_importance_sampled_log_likelihood(mlp_run, capsys):
    code, out, err = run_cli(["evaluate", mlp_run, "--json", "--iw-samples", "50"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["iw_samples"] == 50 and r["log_likelihood_se"] > 0
    # the importance-weighted bound is tighter than the ELBO (Burda et al. 2016, theorem 1)
    assert r["elbo"] < r["log_likelihood"] < 0
    code, table, _ = run_cli(["evaluate", mlp_run, "--iw-samples", "5"], capsys)
    assert code == 0 and "importance-sampled" in table


def test_version(capsys):
    import vaekit

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"vaekit {vaekit.__version__}"


@pytest.mark.parametrize("args,needle", [
    (["train", "--bogus"], "error: no such option: --bogus"),
    (["export"], "error: missing argument 'run'"),
    (["train", "--epochs", "x"], "error: invalid value for '--epochs'"),
    (["bogus"], "error: no such command 'bogus'"),
])
def test_usage_errors_begin_like_vaekit_errors(args, needle, capsys):
    """click's own usage errors say `error:` as vaekit's do (click prints `Error:`), then the usage line; exit 2."""
    code, out, err = run_cli(args, capsys)
    first, usage = err.strip().splitlines()
    assert code == 2 and out == "" and first.startswith(needle) and "Error" not in err
    assert usage.startswith(f"usage: vaekit {args[0] if args[0] != 'bogus' else ''}".rstrip()) and "--help" in usage


def test_help_and_bare_vaekit_still_print_help(capsys):
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0 and "--epochs" in out
    code, _, err = run_cli([], capsys)  # no_args_is_help: click's help text on stderr, exit 2 as before
    assert code == 2 and "Commands:" in err and "error" not in err


@pytest.mark.parametrize("args,needle", [
    (["sample", "{run}", "--out", "s.jpg"], "--out s.jpg must end in .png"),
    (["sample", "{run}", "--npy", "s.txt"], "--npy s.txt must end in .npy"),
    (["plot", "{run}", "curves", "--out", "c.pdf"], "must end in .png"),
    (["plot", "{run}", "manifold", "--n", "1"], "at least 2"),
    (["evaluate", "{run}", "--split", "dev"], "--split must be one of"),
])
def test_output_names_and_values_are_checked(mlp_run, args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli([a.format(run=mlp_run) for a in args], capsys)
    assert code == 2 and needle in err
    assert not any(tmp_path.iterdir())


def test_evaluate_table_keeps_brackets(mlp_run, capsys):
    code, out, _ = run_cli(["evaluate", mlp_run], capsys)
    assert code == 0 and "-E_q[log p(x|z)]" in " ".join(out.split())


def test_a_format_1_run_still_loads_and_evaluates(mlp_run, tmp_path, capsys):
    """A run directory written by vaekit 0.1 (flat config, no format_version) is read through config.upgrade."""
    import shutil

    import torch

    import vaekit
    from vaekit.config import FORMAT_VERSION, Part

    new = json.loads((mlp_run / "config.json").read_text())
    old = {
        "model": {"network": "mlp", "network_args": {"hidden": [64]}, "latent_dim": 2, "posterior": "gaussian",
                  "prior": "normal", "likelihood": "bernoulli", "likelihood_args": {}, "conditional": False,
                  "num_classes": 10, "data_shape": [1, 8, 8]},
        "train": {"objective": "elbo", "objective_args": {}, "optimizer": "adam", "lr": 0.001, "batch_size": 128,
                  "epochs": 2, "seed": 0, "warmup_epochs": 0, "grad_clip": None, "patience": None, "device": "auto"},
        "data": {"source": "digits", "data_dir": None, "label_column": None, "val_fraction": 0.1},
        "recipe": "mlp",
        "data_info": new["data_info"],
    }
    run = tmp_path / "v1"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(old))
    shutil.copy(mlp_run / "model.safetensors", run / "model.safetensors")

    model = vaekit.load(run)
    cfg = vaekit.open_run(run).config
    assert cfg.format_version == FORMAT_VERSION == 4
    assert cfg.model.network == Part("mlp", {"hidden": [64]}) and cfg.model.likelihood == Part("bernoulli")
    assert cfg.model.posterior == Part("gaussian") and cfg.model.prior == Part("normal")
    assert cfg.train.objective == Part("elbo") and cfg.train.optimizer == Part("adam")
    assert cfg.model.variant == "vae" and cfg.model.structure == Part("vae")
    reference = vaekit.load(mlp_run)
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name
    assert json.loads((run / "config.json").read_text()) == old  # loading never rewrites the run

    code, out, err = run_cli(["evaluate", run, "--metrics", "elbo,recon", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    code, out, err = run_cli(["evaluate", mlp_run, "--metrics", "elbo,recon", "--json"], capsys)
    assert code == 0, err
    expected = json.loads(out)
    assert result["n"] == 359 and result["elbo"] < 0
    for key in ("elbo", "recon", "kl", "mse"):
        assert result[key] == expected[key], key  # same weights, same seed: the same numbers


def test_a_format_3_conv_run_reads_its_filters_as_widths(tmp_path):
    """Formats 1-3 called the conv network's filters ``channels``; a run saved so loads with ``widths``,
    and its weights fit the network rebuilt from them."""
    import vaekit
    from vaekit.config import Part

    run = tmp_path / "conv"
    vaekit.train("digits", recipe="conv", epochs=1, widths=[8, 16], dense=8, out=run, progress=False)
    saved = json.loads((run / "config.json").read_text())
    saved["format_version"] = 3
    saved["model"]["network"]["args"] = {"channels": [8, 16], "dense": 8}
    (run / "config.json").write_text(json.dumps(saved))
    assert vaekit.open_run(run).config.model.network == Part("conv", {"widths": [8, 16], "dense": 8})
    assert vaekit.load(run).sample(2).shape == (2, 1, 8, 8)
