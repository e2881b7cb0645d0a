"""scVI's learned library size (--library latent, vaekit/models/library.py; Lopez et al. 2018): its prior from the
training cells' log totals per batch, its KL in the shared ELBO, the count likelihood scaled by its draw, training,
an exact resume, importance sampling, and the refusals."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from safetensors.torch import load_file

import vaekit
from vaekit import rundir
from vaekit.app.evaluations import evaluate_run
from vaekit.contract.bounds import elbo_terms
from vaekit.data import load_data
from vaekit.distributions.counts import zinb_log_prob
from vaekit.errors import VaekitError


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    """60 cells x 10 genes, two batches of different depth (batch b ~4x the totals of a)."""
    folder = tmp_path_factory.mktemp("library")
    rng = np.random.default_rng(3)
    batch = np.repeat(["a", "b"], 30)
    rate = np.where(batch == "b", 8.0, 2.0)[:, None] * rng.uniform(0.5, 1.5, (60, 10))
    np.save(folder / "counts.npy", rng.poisson(rate).astype(np.float32))
    np.save(folder / "counts.batch.npy", batch)
    return folder


def train(counts, out, epochs=2, library="latent", **options):
    return vaekit.train(str(counts / "counts.npy"), likelihood="zinb", covariate="batch", library=library,
                        epochs=epochs, hidden="8", latent_dim=2, batch_size=16, out=out, progress=False, **options)


@pytest.fixture(scope="module")
def run(counts):
    train(counts, counts / "run")
    return vaekit.open_run(counts / "run")


def test_the_prior_is_the_log_totals_of_each_batch_of_training_cells(run, counts):
    part = run.model.library_latent
    splits = load_data(str(counts / "counts.npy"), info=run.info, val_fraction=run.config.data.val_fraction,
                       seed=run.config.train.seed)
    x, b = splits.train.x.numpy(), splits.train.c[:, 1].numpy()
    logs = np.log(x.sum(1))
    expect_mean = [logs[b == k].mean() for k in (0, 1)]
    expect_var = [logs[b == k].var() for k in (0, 1)]                 # population variance, as scvi-tools
    np.testing.assert_allclose(part.log_mean.numpy(), expect_mean, rtol=1e-6)
    np.testing.assert_allclose(part.log_var.numpy(), expect_var, rtol=1e-5)
    assert expect_mean[1] > expect_mean[0] + 1                         # the deeper batch has its own prior


def test_the_kl_of_log_l_joins_the_elbo_in_closed_form(run, counts):
    model = run.model.eval()
    data = load_data(str(counts / "counts.npy"), info=run.info).test
    x, c = data.x, data.c
    torch.manual_seed(0)
    out = model(x, c)
    assert len(out.latents) == 2
    lib = out.latents[1]
    m, s = lib.q.base_dist.loc[:, 0], lib.q.base_dist.scale[:, 0]
    b = c[:, 1]
    mu, var = model.library_latent.log_mean[b], model.library_latent.log_var[b]
    known = 0.5 * (torch.log(var / s ** 2) + (s ** 2 + (m - mu) ** 2) / var - 1)   # KL(N(m, s^2) || N(mu, var))
    t = elbo_terms(out, x)
    torch.testing.assert_close(t.kls[1], known)
    torch.testing.assert_close(t.kl, t.kls[0] + known)
    torch.testing.assert_close(t.elbo, -(t.recon + t.kls[0] + known))
    # the likelihood's scale is the drawn l, not the observed total
    lik = model.likelihood
    px = out.px
    mean = torch.exp(lib.z).reshape(-1, 1) * px.rho
    direct = zinb_log_prob(x.reshape(mean.shape), mean, lik.log_theta.exp(), px.extra).sum(-1)
    torch.testing.assert_close(t.recon, -direct)
    observed = zinb_log_prob(x, x.sum(1, keepdim=True) * px.rho, lik.log_theta.exp(), px.extra).sum(-1)
    assert not torch.allclose(t.recon, -observed)


def test_it_trains_evaluates_and_importance_samples(run, counts):
    rows = [r for r in rundir.read_metrics(counts / "run" / rundir.METRICS) if "train_kl_2" in r]
    assert rows and all(math.isfinite(r["val_kl_2"]) for r in rows)   # the library latent's KL, logged
    values = evaluate_run(counts / "run", metrics=["elbo", "nll"], options={"nll": {"k": 4}})
    assert np.isfinite(values["elbo"]) and np.isfinite(values["log_likelihood"])
    assert values["log_likelihood"] >= values["elbo"] - 5


def test_it_resumes_exactly(counts, tmp_path):
    train(counts, tmp_path / "once", epochs=2)
    train(counts, tmp_path / "twice", epochs=1)
    vaekit.train(out=tmp_path / "twice", epochs=2, resume=True, progress=False)
    a, b = (load_file(tmp_path / name / rundir.WEIGHTS) for name in ("once", "twice"))
    assert "library_latent.log_mean" in a and a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_the_refusals(counts, tmp_path):
    with pytest.raises(VaekitError, match="--library applies to the count likelihoods"):
        vaekit.train(str(counts / "counts.npy"), likelihood="gaussian", library="latent", epochs=1,
                     out=tmp_path / "g", progress=False)
    with pytest.raises(VaekitError, match="--library must be one of observed, latent"):
        train(counts, tmp_path / "bad", library="learned")
    with pytest.raises(VaekitError, match="--library latent .* which the hvae model replaces"):
        train(counts, tmp_path / "f", model="hvae")
    shutil.rmtree(tmp_path, ignore_errors=True)
