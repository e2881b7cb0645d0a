"""Deterministic and regularized autoencoders (vaekit/models/rae.py): Ghosh et al. 2020."""
import json
import math

import numpy as np
import pytest
import torch

import vaekit
from vaekit import rundir
from vaekit.errors import VaekitError
from vaekit.app.evaluations import evaluate_run
from vaekit.models.rae import AEObjective, RAEObjective, decoder_l2, gradient_penalty

from conftest import small_model


@pytest.fixture(scope="module")
def digits():
    return vaekit.load_data("digits")


def _batch(digits, n=16):
    return digits.train.x[:n], digits.train.y[:n]


def test_posterior_is_a_point(digits):
    model = small_model("ae")
    x, y = _batch(digits)
    a, b = model(x), model(x)
    torch.testing.assert_close(a.latents[0].z, b.latents[0].z, rtol=0, atol=0)
    q = model.encode(x)
    torch.testing.assert_close(q.rsample((3,))[2], q.mean)
    assert q.log_prob(q.mean).abs().max() == 0
    assert model.deterministic_posterior and not model.can("posterior_variance")


def test_rae_l2_penalty_by_hand(digits):
    model = small_model("rae-l2")
    x, _ = _batch(digits)
    beta, lam = 0.3, 0.01
    out = RAEObjective("l2", beta=beta, lam=lam)(model, x)
    with torch.no_grad():
        z = model.codes(x)
        recon = -model.decode(z).log_prob(x)
    l2 = sum(float((p.detach().double() ** 2).sum()) for p in model.decoder.parameters())
    z_l2 = float((z.double() ** 2).sum(1).mean()) / 2
    assert float(out.terms["l2"]) == pytest.approx(l2, rel=1e-5)
    assert float(out.terms["z_l2"]) == pytest.approx(z_l2, rel=1e-5)
    assert float(out.loss.detach()) == pytest.approx(float(recon.mean()) + beta * z_l2 + lam * l2, rel=1e-5)
    assert "elbo" not in out.terms  # a point-mass posterior has no ELBO
    assert float(decoder_l2(model).detach()) == pytest.approx(l2, rel=1e-5)
    ae = AEObjective()(model, x)
    assert float(ae.loss.detach()) == pytest.approx(float(recon.mean()), rel=1e-5)
    mse = float(((model.decode(z).mean.detach() - x) ** 2).mean())
    assert float(ae.terms["mse"]) == pytest.approx(mse, rel=1e-5)


def test_gradient_penalty_matches_the_jacobian(digits):
    model = small_model("rae-gp").double()
    x, _ = _batch(digits, 3)
    x = x.double()
    out = model(x)
    z = out.latents[0].z
    gp = gradient_penalty(model, z, None, out.px)                           # (B,)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: model.decode(v[None]).mean.reshape(-1), z[i].detach())
        assert float(gp[i].detach()) == pytest.approx(float(jac.sum(0).pow(2).sum()), rel=1e-8)
    with torch.no_grad():  # validation: the same number without a graph
        out = model(x)
        torch.testing.assert_close(gradient_penalty(model, out.latents[0].z, None, out.px), gp.detach())
    terms = RAEObjective("gp", beta=0.0, lam=2.0)(model, x)
    assert float(terms.terms["gp"]) == pytest.approx(float(gp.detach().mean()), rel=1e-8)
    assert float(terms.loss.detach()) == pytest.approx(float(terms.terms["recon"]) + 2.0 * float(gp.detach().mean()), rel=1e-8)


@pytest.mark.parametrize("covariance", ["full", "diagonal"])
def test_fit_prior_is_the_codes_gaussian(digits, covariance):
    model = small_model("ae").eval()
    model.covariance = covariance  # the structure arg model.structure.args.covariance
    x = digits.train.x[:200]
    torch.testing.assert_close(model.prior().mean, torch.zeros(4))
    model.fit_prior([(x[:70], None), (x[70:], None)])
    with torch.no_grad():
        z = model.codes(x).double().numpy()
    cov = np.cov(z, rowvar=False, bias=True)
    if covariance == "diagonal":
        cov = np.diag(np.diag(cov))
    prior = model.prior()
    np.testing.assert_allclose(prior.mean.numpy(), z.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(prior.covariance_matrix.numpy(), cov + 1e-6 * np.eye(4), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["ae", "rae-l2", "rae-gp"])
def test_variant_fits_its_prior_and_evaluates(name, zoo_run):
    """test_contract.py trains, samples and evaluates each; here the prior fitted after the epoch, the
    reconstruction metrics, and the reason the ELBO does not apply."""
    run = zoo_run(name)
    model = vaekit.load(run)
    assert json.loads((run / rundir.CONFIG).read_text())["train"]["objective"]["name"] == (
        "ae" if name == "ae" else "rae")
    assert not torch.equal(model.prior_scale_tril, torch.eye(4))  # fitted after the epoch
    samples = model.sample(4)
    assert samples.shape == (4, 1, 8, 8) and torch.isfinite(samples).all()
    result = evaluate_run(run)  # default metrics: the ELBO does not apply, reconstruction does
    assert "elbo" not in result and "elbo" in result["not_applicable"] and math.isfinite(result["mse"])
    with pytest.raises(VaekitError, match="point-mass posterior"):
        evaluate_run(run, metrics=["elbo"])
