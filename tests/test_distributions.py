"""Model zoo additions: the sigma-VAE, the mixture-of-Gaussians prior, WAE-MMD and InfoVAE."""
import math

import pytest
import torch
from torch.distributions import MixtureSameFamily

import vaekit
from vaekit.contract.bounds import elbo_terms
from vaekit.data import load_data
from vaekit.distributions.mog_prior import MixturePrior
from vaekit.errors import VaekitError
from vaekit.evaluate import evaluate_elbo
from vaekit.objectives.mmd import MMD, kernel_matrix, mmd

from conftest import small_model as small  # noqa: E402

DIGITS = load_data("digits")
X = DIGITS.train.x[:32]


# -- mixture-of-Gaussians prior --------------------------------------------------------------------
def test_mog_log_prob_is_the_mixture_density_by_hand():
    torch.manual_seed(0)
    prior = MixturePrior(3, components=4)
    with torch.no_grad():
        prior.log_vars.copy_(torch.randn(4, 3) * 0.3)
        prior.logits.copy_(torch.randn(4))
    z = torch.randn(6, 3)
    p = prior()
    assert isinstance(p, MixtureSameFamily) and p.batch_shape == () and p.event_shape == (3,)
    pi = torch.softmax(prior.logits, 0)
    var = prior.log_vars.exp()
    density = torch.zeros(6, dtype=torch.float64)
    for k in range(4):  # prod_d N(z_d; mu_kd, var_kd)
        diff = (z - prior.means[k]).double()
        gauss = torch.exp(-0.5 * diff ** 2 / var[k].double()) / torch.sqrt(2 * math.pi * var[k].double())
        density += pi[k].double() * gauss.prod(-1)
    torch.testing.assert_close(p.log_prob(z).double(), density.log(), atol=1e-5, rtol=1e-5)


def test_mog_samples_and_spread_out_means():
    torch.manual_seed(1)
    prior = MixturePrior(5, components=10)
    assert prior().sample((7,)).shape == (7, 5)
    assert torch.cdist(prior.means, prior.means).add(torch.eye(10) * 1e9).min() > 0.1   # distinct means
    torch.manual_seed(1)
    assert torch.equal(MixturePrior(5, components=10).means, prior.means)               # seeded at build
    with pytest.raises(VaekitError, match="at least 1 component"):
        MixturePrior(5, components=0)


def test_gradients_reach_the_mog_prior_through_the_elbo():
    model = small("mog-vae")
    assert isinstance(model.prior, MixturePrior)
    torch.manual_seed(2)
    out = model(X)
    loss = -elbo_terms(out, X).elbo.mean()
    grads = torch.autograd.grad(loss, [model.prior.means, model.prior.log_vars, model.prior.logits])
    assert all(torch.isfinite(g).all() and (g != 0).any() for g in grads)


def test_sigma_vae_uses_the_optimal_gaussian_decoder():
    model = small("sigma-vae")
    assert type(model.likelihood).__name__ == "GaussianLikelihood" and model.likelihood.mode == "optimal"


# -- MMD ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd_is_near_zero_for_one_distribution_and_positive_for_shifted(kernel):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2000, 4, generator=g), torch.randn(2000, 4, generator=g)
    same = float(mmd(a, b, kernel))
    shifted = float(mmd(a, b + 1.0, kernel))
    assert abs(same) < 0.01, same
    assert shifted > 0.05 and shifted > 20 * abs(same), (shifted, same)


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_unbiased_mmd_by_hand_on_three_points(kernel):
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([[1.0, 1.0], [-1.0, 0.5], [2.0, -1.0]])
    c = 2.0 * 2  # the default bandwidth: 2 d sigma^2

    def k(u, v):
        d2 = float(((u - v) ** 2).sum())
        return math.exp(-d2 / c) if kernel == "rbf" else c / (c + d2)

    xx = sum(k(x[i], x[j]) for i in range(3) for j in range(3) if i != j) / 6
    yy = sum(k(y[i], y[j]) for i in range(3) for j in range(3) if i != j) / 6
    xy = sum(k(x[i], y[j]) for i in range(3) for j in range(3)) / 9
    assert float(mmd(x, y, kernel)) == pytest.approx(xx + yy - 2 * xy, abs=1e-6)
    assert float(mmd(x, y, kernel, scale=1.0)) != pytest.approx(xx + yy - 2 * xy, abs=1e-6)  # scale is used
    assert float(kernel_matrix(x, x, kernel, c).diagonal().sum()) == pytest.approx(3.0)


def test_mmd_objective_weights_its_terms():
    model = small()
    torch.manual_seed(5)
    with torch.no_grad():
        wae = MMD(kernel="imq", lam=10.0, alpha=1.0)(model, X)
    assert set(wae.terms) >= {"elbo", "recon", "kl", "mmd"}
    assert float(wae.loss) == pytest.approx(float(wae.terms["recon"] + 10 * wae.terms["mmd"]), rel=1e-5)
    torch.manual_seed(5)
    with torch.no_grad():
        out = model(X)
    t = elbo_terms(out, X)
    assert float(wae.terms["elbo"]) == pytest.approx(float(t.elbo.mean()), abs=1e-4)   # the true bound
    torch.manual_seed(5)
    with torch.no_grad():
        info = MMD(kernel="rbf", lam=3.0, alpha=0.25)(model, X, kl_weight=0.5)
    expect = info.terms["recon"] + 0.75 * 0.5 * info.terms["kl"] + 2.25 * info.terms["mmd"]
    assert float(info.loss) == pytest.approx(float(expect), rel=1e-5)
    for bad in [dict(kernel="gauss"), dict(lam=-1.0), dict(alpha=2.0), dict(alpha=0.0, lam=0.5)]:
        with pytest.raises(VaekitError):
            MMD(**bad)


# -- each new variant: one epoch on digits, then the ELBO ---------------------------------------------
@pytest.mark.parametrize("name", ["sigma-vae", "mog-vae", "wae-mmd", "infovae"])
def test_variant_trains_one_epoch_and_evaluates(name, tmp_path):
    model = vaekit.train("digits", model=name, epochs=1, out=tmp_path / name, progress=False, hidden=[32],
                         latent_dim=4, batch_size=256)
    assert model.config.model.variant == name
    result = evaluate_elbo(vaekit.load(tmp_path / name), DIGITS.test)
    assert math.isfinite(float(result["elbo"]))


def test_collapse_advice_fits_the_objective():
    """The ELBO's remedies (warm-up, free bits, beta) for an ELBO model; the objective's own options otherwise."""
    from vaekit.app.options import apply_options, base_config
    from vaekit.evaluate.decomposition import collapse_advice

    advice = {}
    for variant in ("vae", "wae-mmd"):
        model = small(variant)
        model.config = apply_options(base_config(), {"model": variant})
        advice[variant] = collapse_advice(model)
    assert "--free-bits" in advice["vae"] and "--beta" in advice["vae"]
    assert "mmd objective" in advice["wae-mmd"] and "--beta" not in advice["wae-mmd"]
