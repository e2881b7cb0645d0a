"""What `vaekit train` says at its end: epochs and time, the monitored validation value and the best
epoch, nothing about time when a resumed run had nothing to train, and a collapsed latent at once."""
import re

from conftest import run_cli

FAST = ["--hidden", "32", "--batch-size", "256", "--no-plots", "--no-progress"]
HEALTHY = ["--recipe", "mlp", "--batch-size", "64", "--no-plots", "--no-progress"]  # a 2-D latent in use by epoch 2


def test_the_last_line_gives_the_monitored_value_and_the_best_epoch(tmp_path, capsys):
    run = tmp_path / "r"
    code, _, err = run_cli(["train", "--epochs", "2", "--out", run, *HEALTHY], capsys)
    assert code == 0, err
    found = re.search(r"trained 2 epochs in [\d.]+s -> (.+): val elbo (-[\d.]+) \(best (-[\d.]+) at epoch (\d)\)", err)
    assert found, err
    import vaekit
    rows = vaekit.open_run(run).metrics()
    best = max(rows, key=lambda row: row["val_elbo"])
    assert found[1] == str(run) and float(found[2]) == round(rows[-1]["val_elbo"], 2)
    assert (float(found[3]), int(found[4])) == (round(best["val_elbo"], 2), best["epoch"])
    assert "warning" not in err  # its latent carries information

    code, _, err = run_cli(["train", "--out", run, "--resume", "--no-plots"], capsys)  # already 2 of 2 epochs
    assert code == 0 and "nothing to do" in err and f"nothing trained -> {run} (it has 2 epochs)" in err, err
    assert "trained 2 epochs in" not in err and "s ->" not in err

    code, _, err = run_cli(["train", "--out", run, "--resume", "--epochs", "3", "--no-plots", "--no-progress"], capsys)
    assert code == 0 and re.search(r"trained 1 epoch in [\d.]+s", err), err


def test_a_collapsed_latent_is_reported_when_training_ends(tmp_path, capsys):
    """beta = 500 from the first step drives every dimension to the prior: `evaluate` would warn of
    posterior collapse, and so does `train`."""
    code, _, err = run_cli(["train", "--epochs", "2", "--beta", "500", "--latent-dim", "4",
                            "--out", tmp_path / "r", *FAST], capsys)
    assert code == 0, err
    assert "warning: posterior collapse in the latent" in err and "--warmup" in err, err
    code, out, err2 = run_cli(["evaluate", tmp_path / "r", "--metrics", "au"], capsys)
    assert "posterior collapse in the latent" in out + err2
    code, _, err = run_cli(["train", "--model", "ae", "--epochs", "1", "--out", tmp_path / "ae", *FAST], capsys)
    assert code == 0 and "warning" not in err, err  # no prior, no KL: nothing to collapse to


def test_the_best_epoch_follows_the_objectives_direction(tmp_path):
    """ELBO is maximised, a reconstruction-monitored objective (rae's recon) minimised; the best epoch
    is then not the last."""
    from vaekit import rundir
    from vaekit.app.options import apply_options, base_config
    from vaekit.app.summary import final_line
    from vaekit.run import Run

    for model, key, values, best in (("vae", "elbo", [-30.0, -25.0, -27.0], "best -25.00 at epoch 2"),
                                     ("rae-l2", "recon", [9.0, 7.0, 8.0], "best 7.00 at epoch 2")):
        run = tmp_path / model
        rundir.make_dir(run)
        rundir.write_config(run, apply_options(base_config(), {"model": model, "data": "digits"}, []))
        for i, v in enumerate(values, 1):
            rundir.append_metrics(run, {"epoch": i, "step": i, f"train_{key}": v, f"val_{key}": v})
        line = final_line(Run(run), 3.0, 1)
        assert line == f"trained 2 epochs in 3.0s -> {run}: val {key} {values[-1]:.2f} ({best})", line
