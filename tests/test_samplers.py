"""Samplers fitted after training (vaekit/samplers, vaekit/app/sampling.py, `vaekit fit-sampler`)."""
import json
import math

import numpy as np
import pytest
import torch

import vaekit
from vaekit.app.options import apply_options, base_config
from vaekit.app.sampling import build_sampler, load_sampler, sampler_files
from vaekit.run import Run
from vaekit.errors import VaekitError
from vaekit.samplers.gmm import GaussianMixtureSampler
from vaekit.samplers.maf import MAFSampler
from vaekit.samplers.two_stage import TwoStageVAESampler

from conftest import run_cli, small_model

SMALL_MAF = dict(layers=3, hidden=32, depth=1, epochs=40, lr=3e-3, batch=128)


def bimodal(n, seed=0, dim=2, scale=1.0):
    """Two Gaussian blobs, weights 0.3 / 0.7, at -2 and +2 along the first axis (times ``scale``)."""
    g = torch.Generator().manual_seed(seed)
    pick = (torch.rand(n, generator=g) < 0.3)
    centre = torch.zeros(n, dim)
    centre[:, 0] = torch.where(pick, -2.0, 2.0)
    return scale * (centre + 0.5 * torch.randn(n, dim, generator=g))


def known_mixture(n=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    weights = torch.tensor([0.3, 0.7])
    means = torch.tensor([[-3.0, 1.0], [2.0, -1.0]])
    covs = torch.tensor([[[1.0, 0.6], [0.6, 0.8]], [[0.5, -0.2], [-0.2, 0.3]]])
    pick = (torch.rand(n, generator=g) < weights[0]).long().neg().add(1)  # 0 with p 0.3, else 1
    eps = torch.randn(n, 2, generator=g)
    x = means[pick] + (torch.linalg.cholesky(covs)[pick] @ eps[:, :, None]).squeeze(-1)
    return x, weights, means, covs


# -- the gaussian mixture ----------------------------------------------------------------------
@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_gmm_recovers_a_known_mixture_and_matches_sklearn(init):
    from sklearn.mixture import GaussianMixture

    x, weights, means, covs = known_mixture()
    gmm = GaussianMixtureSampler(2, components=2, init=init).fit(x, seed=0)
    order = gmm.means[:, 0].argsort()                         # component 0 is the one at x = -3
    cov = gmm.scale_tril @ gmm.scale_tril.transpose(1, 2)
    torch.testing.assert_close(gmm.weights[order].float(), weights, atol=0.03, rtol=0)
    torch.testing.assert_close(gmm.means[order].float(), means, atol=0.08, rtol=0)
    torch.testing.assert_close(cov[order].float(), covs, atol=0.08, rtol=0)
    reference = GaussianMixture(2, covariance_type="full", reg_covar=1e-6, tol=1e-3, random_state=0).fit(x.numpy())
    assert float(gmm.log_prob(x).mean()) == pytest.approx(reference.score(x.numpy()), abs=2e-3)
    assert gmm.converged and gmm.steps < gmm.iterations


def test_gmm_log_prob_by_hand():
    """Two components, checked against the mixture density written out with numpy."""
    x, *_ = known_mixture(500, seed=1)
    gmm = GaussianMixtureSampler(2, components=2, iterations=3).fit(x, seed=3)
    z = x[:7].double().numpy()
    dens = 0
    for w, mu, tril in zip(gmm.weights.numpy(), gmm.means.numpy(), gmm.scale_tril.numpy()):
        cov = tril @ tril.T
        d = z - mu
        maha = np.einsum("nd,de,ne->n", d, np.linalg.inv(cov), d)
        dens = dens + w * np.exp(-0.5 * maha) / np.sqrt(np.linalg.det(2 * np.pi * cov))
    np.testing.assert_allclose(gmm.log_prob(x[:7]).numpy(), np.log(dens), rtol=1e-5)
    np.testing.assert_allclose(torch.logsumexp(gmm._log_joint(x[:7].double()), 1).numpy(), np.log(dens), rtol=1e-9)


def test_gmm_refuses_bad_options_and_too_few_codes():
    with pytest.raises(VaekitError, match="init must be one of"):
        GaussianMixtureSampler(2, init="kmeans")
    with pytest.raises(VaekitError, match="at least 10 codes"):
        GaussianMixtureSampler(2).fit(torch.randn(5, 2))
    with pytest.raises(VaekitError, match=r"shape \(50, 3\)"):
        GaussianMixtureSampler(2).fit(torch.randn(50, 3))
    with pytest.raises(VaekitError, match="has no option componets; its options are: components"):
        build_sampler("gmm", 2, {"componets": 3})
    with pytest.raises(VaekitError, match="unknown sampler 'gm'; choose one of: gmm, maf, prior, two-stage"):
        build_sampler("gm", 2)


# -- the masked autoregressive flow ------------------------------------------------------------
@pytest.mark.parametrize("dim", [1, 2])
def test_maf_density_integrates_to_one(dim):
    codes = bimodal(1000, dim=dim, scale=3.0)  # scaled: the standardization's log-det counts too
    maf = MAFSampler(dim, **SMALL_MAF).fit(codes, seed=0)
    if dim == 1:
        grid = torch.linspace(-20, 20, 4001)[:, None]
        mass = torch.trapezoid(maf.log_prob(grid).double().exp(), grid[:, 0].double())
    else:
        axis = torch.linspace(-20, 20, 321)
        grid = torch.cartesian_prod(axis, axis)                                  # (321^2, 2)
        density = maf.log_prob(grid).double().exp().reshape(321, 321)
        mass = torch.trapezoid(torch.trapezoid(density, axis.double(), dim=1), axis.double())
    assert float(mass) == pytest.approx(1.0, abs=0.02)


def test_maf_inverse_and_log_det_are_exact():
    maf = MAFSampler(3, **dict(SMALL_MAF, epochs=5)).fit(bimodal(300, dim=3), seed=1)
    with torch.no_grad():  # trained weights are non-zero, so every layer is a real autoregressive map
        u = torch.randn(50, 3)
        x = maf.inverse(u)
        back, _ = maf.forward_transform(x)
    torch.testing.assert_close(back, u, atol=1e-4, rtol=0)
    z = maf.from_unit(x)                                # a sample, then its log-density: the round trip
    normal = torch.distributions.Normal(0.0, 1.0).log_prob(u).sum(1)
    with torch.no_grad():
        log_det = torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(
            lambda v: maf.forward_transform(v[None])[0][0], xi))[1] for xi in x])
    torch.testing.assert_close(maf.log_prob(z), normal + log_det - maf.scale.log().sum(), atol=1e-4, rtol=0)
    _, ours = maf.forward_transform(x)
    torch.testing.assert_close(ours, log_det, atol=1e-4, rtol=0)  # sum of -alpha = log|det du/dx| (autograd)


def test_fitted_densities_beat_one_gaussian_on_held_out_bimodal_codes():
    train, test = bimodal(1500, seed=0), bimodal(1000, seed=1)
    one = GaussianMixtureSampler(2, components=1).fit(train).log_prob(test).mean()
    gmm = GaussianMixtureSampler(2, iterations=30).fit(train, seed=0).log_prob(test).mean()
    maf = MAFSampler(2, **SMALL_MAF).fit(train, seed=0).log_prob(test).mean()
    assert gmm > one + 0.5 and maf > one + 0.4, (float(one), float(gmm), float(maf))


# -- the two-stage VAE -------------------------------------------------------------------------
def test_two_stage_samples_match_the_codes_moments():
    codes = bimodal(1500, seed=2) * torch.tensor([3.0, 0.5]) + torch.tensor([1.0, -2.0])
    stage = TwoStageVAESampler(2, hidden=64, depth=2, epochs=40, lr=3e-3, batch=128).fit(codes, seed=0)
    torch.manual_seed(0)
    z = stage.sample(4000)
    std = codes.std(0)
    assert ((z.mean(0) - codes.mean(0)).abs() < 0.15 * std).all(), (z.mean(0), codes.mean(0))
    torch.testing.assert_close(z.std(0), std, atol=0, rtol=0.15)
    torch.testing.assert_close(torch.corrcoef(z.t())[0, 1], torch.corrcoef(codes.t())[0, 1], atol=0.1, rtol=0)
    left = float((z[:, 0] < 1.0).float().mean())        # the mode at x = -5 holds 30% of the codes
    assert 0.2 < left < 0.4, left
    assert float(stage.score(codes).mean()) < float(GaussianMixtureSampler(2, iterations=30).fit(codes)
                                                     .log_prob(codes).mean()) + 0.5  # a bound, not above


def test_fits_are_seeded_and_leave_the_global_rng_alone():
    codes = bimodal(400, seed=3)
    for name, args in (("gmm", {"components": 3}), ("maf", dict(SMALL_MAF, epochs=3)),
                       ("two-stage", {"hidden": 16, "epochs": 3})):
        torch.manual_seed(123)
        a = build_sampler(name, 2, args)
        before = torch.get_rng_state()
        a.fit(codes, seed=5)
        assert torch.equal(torch.get_rng_state(), before), name  # fits draw from their own seeded RNG
        torch.manual_seed(999)
        b = build_sampler(name, 2, args).fit(codes, seed=5)
        for key, value in a.state_dict().items():
            torch.testing.assert_close(value, b.state_dict()[key], rtol=0, atol=0, msg=f"{name} {key}")


# -- runs, the API and the command line --------------------------------------------------------
@pytest.fixture(scope="module")
def rae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("samplers") / "rae"
    code, _, _ = run_cli(["train", "--data", "digits", "--model", "rae-l2", "--epochs", "1", "--hidden", "32",
                          "--latent-dim", "4", "--out", out, "--no-progress", "--no-plots"])
    assert code == 0
    return out


def test_cli_fit_sampler_then_sample(rae_run, capsys, tmp_path):
    code, out, _ = run_cli(["fit-sampler", "--help"], capsys)
    assert code == 0 and "Example: vaekit fit-sampler" in " ".join(out.split())
    code, out, err = run_cli(["fit-sampler", rae_run, "--sampler", "gmm", "--set", "components=3", "--seed", "1",
                              "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert set(result["scores"]) == {"train", "val", "test"} and result["args"]["components"] == 3
    meta_path, tensors = sampler_files(rae_run, "gmm")
    assert tensors.is_file() and json.loads(meta_path.read_text())["codes"]["train"] > 1000
    npy, png = tmp_path / "s.npy", tmp_path / "s.png"
    assert run_cli(["sample", rae_run, "--sampler", "gmm", "--n", "12", "--out", npy], capsys)[0] == 0
    assert np.load(npy).shape == (12, 1, 8, 8)
    assert run_cli(["sample", rae_run, "--sampler", "gmm", "--n", "9", "--out", png], capsys)[0] == 0
    assert png.stat().st_size > 0
    assert run_cli(["sample", rae_run, "--n", "5", "--out", tmp_path / "p.npy"], capsys)[0] == 0  # the prior
    assert np.load(tmp_path / "p.npy").shape == (5, 1, 8, 8)


def test_save_load_round_trip_gives_the_same_samples(rae_run):
    model = vaekit.load(rae_run)
    for name, args in (("gmm", {"components": 4, "iterations": 20}), ("maf", dict(SMALL_MAF, epochs=2)),
                       ("two-stage", {"hidden": 16, "epochs": 2})):
        fitted = vaekit.fit_sampler(rae_run, name, seed=2, **args)
        loaded = vaekit.load_sampler(rae_run, name)
        torch.manual_seed(7)
        a = fitted.sample(20)
        torch.manual_seed(7)
        b = loaded.sample(20)
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
        assert a.shape == (20, 4) and loaded.args == fitted.args
        torch.manual_seed(7)
        x = loaded.generate(model, 3)
        assert x.shape == (3, 1, 8, 8)


def test_errors_unfitted_stale_unknown_and_discrete(rae_run, capsys, tmp_path):
    code, _, err = run_cli(["sample", rae_run, "--sampler", "two-stage-x", "--n", "4"], capsys)
    assert code == 2 and "choose one of: gmm, maf, prior, two-stage" in err
    code, _, err = run_cli(["fit-sampler", rae_run, "--sampler", "nope"], capsys)
    assert code == 2 and "unknown sampler 'nope'" in err
    code, _, err = run_cli(["fit-sampler", rae_run, "--set", "componets=3"], capsys)
    assert code == 2 and "has no option componets" in err
    meta_path, tensors = sampler_files(rae_run, "maf")
    meta_path.unlink(missing_ok=True)
    code, _, err = run_cli(["sample", rae_run, "--sampler", "maf", "--n", "4"], capsys)
    assert code == 2 and f"fit it first with `vaekit fit-sampler {rae_run} --sampler maf`" in err
    vaekit.fit_sampler(rae_run, "gmm", components=2, iterations=2)
    meta_path, _ = sampler_files(rae_run, "gmm")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(dict(meta, weights="0" * 16)))
    with pytest.raises(VaekitError, match="fitted to other weights"):
        load_sampler(rae_run, "gmm")
    vq = small_model("vqvae")
    vq_run = Run(tmp_path, apply_options(base_config(), {"model": "vqvae"}), vq)
    with pytest.raises(VaekitError, match="does not apply to the VQVAE model: it draws points anywhere in the latent space, but the latent space is a set of discrete"):
        vaekit.fit_sampler(vq_run, "gmm")


def test_prior_sampler_scores_codes_under_the_models_prior(rae_run):
    model = vaekit.load(rae_run)
    prior = build_sampler("prior", 4).use(model)
    z = torch.randn(6, 4)
    torch.testing.assert_close(prior.log_prob(z), model.prior().log_prob(z))
    torch.manual_seed(3)
    a = prior.sample(5)
    torch.manual_seed(3)
    torch.testing.assert_close(a, model.prior_sample(5))
    assert math.isfinite(vaekit.fit_sampler(rae_run, "prior").scores["test"])


@pytest.mark.parametrize("variant,word", [("gumbel-vae", "simplices"), ("svae", "sphere")])
def test_samplers_refuse_latent_spaces_a_density_on_r_d_would_leave(variant, word):
    """A GMM on relaxed one-hot codes or codes on a sphere scores and draws points off them: refused."""
    from conftest import small_model
    from vaekit.app.sampling import require_continuous

    with pytest.raises(VaekitError, match=f"it draws points anywhere in the latent space, but .*{word}"):
        require_continuous(small_model(variant))
    require_continuous(small_model("vae"))
