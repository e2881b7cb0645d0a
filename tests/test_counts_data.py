"""Count data and covariates: raw counts kept whole, a batch covariate fed to encoder and decoder (scVI,
Lopez et al. 2018), counterfactual decodes, and the refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit
from vaekit.app.evaluations import evaluate_run
from vaekit.data import load_data
from vaekit.errors import VaekitError


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    """60 cells x 10 genes of Poisson counts in two batches, the second with 3x the first genes' counts;
    the batch beside them as counts.batch.npy."""
    folder = tmp_path_factory.mktemp("counts")
    rng = np.random.default_rng(0)
    batch = np.repeat(["a", "b"], 30)
    rate = np.where((batch == "b")[:, None] & (np.arange(10) < 5), 6.0, 2.0)
    np.save(folder / "counts.npy", rng.poisson(rate).astype(np.float32))
    np.save(folder / "counts.batch.npy", batch)
    return folder


@pytest.fixture(scope="module")
def runs(counts):
    out = {}
    for lik in ("nb", "zinb"):
        vaekit.train(str(counts / "counts.npy"), likelihood=lik, covariate="batch", epochs=1, hidden="8",
                     latent_dim=2, out=counts / lik, progress=False)
        out[lik] = vaekit.open_run(counts / lik)
    return out


@pytest.mark.parametrize("lik", ["nb", "zinb"])
def test_counts_with_a_covariate_train(runs, counts, lik):
    run = runs[lik]
    assert run.info.counts and run.info.mean is None
    assert run.info.covariates == [{"name": "batch", "categories": ["a", "b"]}]
    assert run.model.covariates == {"batch": 2} and run.config.model.likelihood.name == lik
    splits = load_data(str(counts / "counts.npy"), info=run.info)
    x = np.load(counts / "counts.npy")
    assert torch.equal(splits.train.x, splits.train.x.round()) and splits.train.x.sum() + splits.val.x.sum() \
        + splits.test.x.sum() == x.sum()                        # raw, not standardized
    assert splits.test.c.shape == (len(splits.test), 2) and set(splits.test.c[:, 0].tolist()) == {-1}
    assert np.isfinite(evaluate_run(counts / lik, metrics=["elbo"])["elbo"])


def test_a_covariate_value_changes_the_decode_and_the_code(runs, counts):
    """Encoded with its own batch and decoded as the other: scVI's counterfactual (transform_batch)."""
    run = runs["zinb"]
    data = load_data(str(counts / "counts.npy"), info=run.info).test
    model, x, c = run.model, data.x, data.c
    as_a, as_b = (model.reconstruct(x, c, covariates={"batch": k}) for k in (0, 1))
    assert not torch.allclose(as_a, as_b)
    own = model.reconstruct(x, c)
    mine = c[:, 1] == 0
    torch.testing.assert_close(own[mine], as_a[mine])   # the own batch: the plain reconstruction
    as_zero = c.clone()
    as_zero[:, 1] = 0                                   # encoded with the own batch, decoded as batch 0
    torch.testing.assert_close(as_a, model.decode(model.embed(x, c), as_zero).mean)
    codes = model.embed(x, c, covariates={"batch": 1})
    assert not torch.allclose(codes[mine], model.embed(x, c)[mine])
    with pytest.raises(VaekitError, match="covariate 'batch' 2 is out of range"):
        model.reconstruct(x, c, covariates={"batch": 2})
    with pytest.raises(VaekitError, match=r"covariates=\['donor'\] are not this model's"):
        model.embed(x, c, covariates={"donor": 0})
    with pytest.raises(VaekitError, match="conditioned on the covariates batch"):
        model.embed(x)


def test_encode_takes_a_covariate_value(runs, counts, tmp_path):
    from vaekit.app.workflows import encode_run

    (path,) = encode_run(counts / "zinb", tmp_path / "z.npy", covariate_values=["batch=b"])
    assert np.load(path).shape[1] == 2
    with pytest.raises(VaekitError, match="covariate 'batch' has the categories a, b"):
        encode_run(counts / "zinb", tmp_path / "z.npy", covariate_values=["batch=c"])


def test_a_gaussian_likelihood_refuses_counts(counts, tmp_path):
    with pytest.raises(VaekitError, match="loaded as count data .* which the gaussian likelihood does not model"):
        vaekit.train(str(counts / "counts.npy"), likelihood="gaussian", counts=True, epochs=1, out=tmp_path / "g",
                     progress=False)


def test_a_csv_covariate_column_and_non_counts(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("g1,g2,donor\n1,0,d2\n3,4,d1\n0,2,d2\n5,1,d1\n2,2,d1\n")
    splits = load_data(str(path), covariates=["donor"], counts=True, val_fraction=0)
    assert splits.info.columns == ["g1", "g2"] and splits.info.covariates[0]["categories"] == ["d1", "d2"]
    with pytest.raises(VaekitError, match="has no column 'batch' .--covariate."):
        load_data(str(path), covariates=["batch"])
    path.write_text("g1,g2\n1.5,0\n3,4\n0,2\n5,1\n2,2\n")
    with pytest.raises(VaekitError, match="has the value 1.5, but count data"):
        load_data(str(path), counts=True)
    with pytest.raises(VaekitError, match=r"needs the file .*t\.batch\.npy"):
        np.save(tmp_path / "t.npy", np.ones((5, 2), np.float32))
        load_data(str(tmp_path / "t.npy"), covariates=["batch"])


def test_the_latent_map_is_drawn_by_label_and_by_batch(runs, counts, tmp_path):
    from vaekit.plots import plot_latent

    run = runs["nb"]
    data = load_data(str(counts / "counts.npy"), info=run.info).test
    fig = plot_latent(run.model, data, tmp_path / "latent.png", info=run.info)
    assert fig.stat().st_size > 0


def test_sampling_a_model_with_covariates_names_the_categories(runs, counts, tmp_path):
    from vaekit.app.sampling import sample_run

    with pytest.raises(VaekitError, match="choose a category of each, e.g. --covariate-value batch=NAME"):
        sample_run(counts / "nb", n=4, npy=str(tmp_path / "s.npy"))
    (path, ) = sample_run(counts / "nb", n=4, npy=str(tmp_path / "s.npy"), covariate_values=["batch=b"])
    draws = np.load(path)
    assert draws.shape == (4, 10) and (draws >= 0).all()
