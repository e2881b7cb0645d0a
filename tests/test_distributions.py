"""Priors and likelihoods (vaekit/distributions): the mixture-of-Gaussians prior, the VampPrior, the sigma-VAE's
optimal Gaussian decoder. Training and evaluating each variant is tests/test_contract.py's table."""
import math

import pytest
import torch
from torch.distributions import MixtureSameFamily, Normal

from vaekit.contract.bounds import elbo_terms
from vaekit.data import load_data
from vaekit.distributions.mog_prior import MixturePrior
from vaekit.errors import VaekitError
from vaekit.registry import PRIORS

from conftest import small_model as small, small_parts  # noqa: E402

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


# -- VampPrior (Tomczak & Welling 2018) --------------------------------------------------------------
def test_vamp_prior_is_the_hand_computed_mixture():
    cfg, model = small_parts("vamp", sets=["model.prior.args.components=3"])
    assert isinstance(model.prior, PRIORS.get("vamp"))
    z = torch.randn(7, 4)
    with torch.no_grad():
        q = model.encode(model.prior.inputs())                  # (K=3,) x (D=4,)
        mu, std = q.base_dist.loc, q.base_dist.scale
        per = Normal(mu[None], std[None]).log_prob(z[:, None, :]).sum(-1)   # (7, 3)
        hand = torch.logsumexp(per, dim=1) - math.log(3)
        assert torch.allclose(model.prior().log_prob(z), hand, atol=1e-5)
    # the KL is the Monte Carlo estimate at the sample, and the pseudo-inputs get gradients
    x = DIGITS.train.x[:16]
    out = model(x)
    layer = out.latents[0]
    kl = elbo_terms(out, x).kl
    assert torch.allclose(kl, layer.q.log_prob(layer.z) - layer.prior.log_prob(layer.z))
    kl.mean().backward()
    assert model.prior.pseudo_inputs.grad is not None and model.prior.pseudo_inputs.grad.abs().sum() > 0
