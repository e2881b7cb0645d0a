"""``vaekit report``: one self-contained HTML file of a run, of several side by side, and of a run still training."""
import re
import shutil

import pytest
import torch

from conftest import run_cli
from vaekit import rundir
from vaekit.errors import VaekitError


@pytest.fixture(scope="module")
def evaluated(mlp_run, tmp_path_factory):
    """A copy of the session's MLP run, evaluated (elbo), with a resume event in its metrics."""
    from vaekit.app.evaluations import evaluate_run

    run = tmp_path_factory.mktemp("report") / "mlp"
    shutil.copytree(mlp_run, run)
    evaluate_run(run, metrics=["elbo"], save=str(rundir.evaluation_path(run)))
    rundir.append_event(run, "resumed", epoch=1, step=3)
    return run


@pytest.fixture(scope="module")
def one_report(evaluated):
    from vaekit.report import report_html

    return report_html([evaluated])


def test_one_run_has_every_section_and_opens_offline(one_report):
    html = one_report
    for heading in ("Configuration", "Evaluation", "Training curves", "Pictures", "Latent map"):
        assert f"<h2>{heading}</h2>" in html
    assert "Kingma &amp; Welling 2014" in html and "model.network" in html and "hidden=[64]" in html
    assert "evidence lower bound" in html and "nats per example" in html  # meanings and units
    # offline: nothing is fetched, every picture is inline
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page fetches something"
    assert "<link" not in html and "<script src" not in html
    for kind in ("samples", "reconstructions", "traversal", "interpolation"):
        assert re.search(rf'<img alt="{kind}" src="data:image/png;base64,', html), kind


def test_curves_have_hover_values_and_events(one_report):
    tips = re.findall(r'<circle class="pt"[^>]*data-tip="([^"]+)"', one_report)
    assert any(t.startswith("mlp · val elbo · epoch 2: -") for t in tips), tips[:4]
    assert re.search(r'<line class="event"[^>]*data-tip="mlp: resumed at epoch 1, step 3"', one_report)


def test_latent_map_has_every_test_point_and_a_thumbnail_each(one_report):
    assert len(re.findall(r"<circle cx=[^>]*data-i=", one_report)) == 359  # digits' test split, all of it
    assert len(re.findall(r"<circle cx=[^>]*data-t=", one_report)) == 359  # small images: all in the sprite
    assert re.search(r'<img class="sprite" id="map-mlp-sprite" hidden alt="" data-w="8" data-h="8" data-cols="50" '
                     r'src="data:image/png;base64,', one_report)


def test_latent_map_places_each_example_at_its_posterior_mean(one_report, evaluated):
    """The mlp recipe's latent is 2-D: the dots are the posterior means, z[0] across and z[1] up."""
    import numpy as np

    import vaekit
    from vaekit.app.workflows import run_data
    from vaekit.plots.common import posterior_means

    run = vaekit.open_run(evaluated)
    z = posterior_means(run.model, run_data(run)).numpy()
    dots = re.findall(r'<circle cx="([-\d.]+)" cy="([-\d.]+)"[^>]*data-i="(\d+)"', one_report)
    i = np.array([int(d[2]) for d in dots])
    xy = np.array([[float(d[0]), float(d[1])] for d in dots])
    assert np.corrcoef(xy[:, 0], z[i, 0])[0, 1] > 0.999 and np.corrcoef(xy[:, 1], z[i, 1])[0, 1] < -0.999


def test_thumbnails_are_sampled_to_the_budget():
    from vaekit.report.latent_map import thumbnails

    g = torch.Generator().manual_seed(0)
    x, r = torch.rand(400, 1, 8, 8, generator=g), torch.rand(400, 1, 8, 8, generator=g)  # noise: PNG cannot shrink it
    png, keep = thumbnails(x, r, budget=100_000)
    assert len(keep) == 400
    png, keep = thumbnails(x, r, budget=20_000)
    assert len(png) <= 20_000 and 100 < len(keep) < 400 and list(keep) == sorted(set(keep.tolist()))


def test_several_runs_side_by_side_through_the_cli(evaluated, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(evaluated, other)
    out = tmp_path / "both.html"
    code, _, err = run_cli(["report", evaluated, other, "--out", out], capsys)
    assert code == 0, err
    assert f"wrote {out} (" in err
    html = out.read_text(encoding="utf-8")
    assert "Training curves, on shared axes" in html and "The same examples, reconstructed by each run" in html
    assert re.search(r"<tr><th>metric</th><th>mlp</th><th>other</th><th>meaning</th></tr>", html)
    assert len(re.findall(r'<table class="same">.*?</table>', html, re.S)[0].split("<tr>")) == 4  # originals + 2


def test_a_run_still_training_before_its_first_epoch(mlp_run, tmp_path):
    from vaekit.report import report_html

    run = tmp_path / "young"
    shutil.copytree(mlp_run, run)
    (run / rundir.WEIGHTS).unlink()
    (run / rundir.METRICS).write_text("", encoding="utf-8")
    with rundir.training(run):
        html = report_html([run])
    assert re.search(r'<p class="banner">young is still training \(process \d+ on .*\): this report shows what exists '
                     r"so far, 0 of 2 epochs; no weights yet", html)
    assert "No training curves yet" in html and "No latent map: the run has no weights yet" in html


def test_bad_out_and_missing_run(evaluated, tmp_path, capsys):
    from vaekit.report import write_report

    with pytest.raises(VaekitError, match="--out r.pdf must end in .html"):
        write_report([evaluated], "r.pdf")
    with pytest.raises(VaekitError, match="a run is given twice"):
        write_report([evaluated, evaluated], str(tmp_path / "twice.html"))
    code, _, err = run_cli(["report", tmp_path / "nothing"], capsys)
    assert code != 0 and "error" in err and "Traceback" not in err
