"""The count likelihoods (poisson, nb, zinb) against scipy's pmfs on grids, and scVI's library scaling."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from vaekit.distributions.counts import (NBLikelihood, PoissonLikelihood, ZINBLikelihood, nb_log_prob,
                                         zinb_log_prob)
from vaekit.errors import VaekitError

X = torch.arange(0, 41, dtype=torch.float64)
GRID = [(mu, theta) for mu in (0.05, 0.7, 3.0, 40.0) for theta in (0.2, 1.5, 60.0)]


@pytest.mark.parametrize("mu, theta", GRID)
def test_nb_matches_scipy(mu, theta):
    ours = nb_log_prob(X, torch.tensor(mu, dtype=torch.float64), torch.tensor(theta, dtype=torch.float64), eps=0)
    # scipy's nbinom(n, p) counts failures before n successes: mean n (1 - p) / p = mu for p = theta / (theta + mu)
    theirs = stats.nbinom(theta, theta / (theta + mu)).logpmf(X.numpy())
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mu, theta", GRID)
@pytest.mark.parametrize("pi", [0.0, 0.3, 0.95])
def test_zinb_is_the_exact_zero_inflated_mixture(mu, theta, pi):
    logits = torch.tensor(np.log(pi / (1 - pi)) if pi else -50.0, dtype=torch.float64)
    ours = zinb_log_prob(X, torch.tensor(mu, dtype=torch.float64), torch.tensor(theta, dtype=torch.float64), logits,
                         eps=0)
    nb = stats.nbinom(theta, theta / (theta + mu)).pmf(X.numpy())
    theirs = np.log(pi * (X.numpy() == 0) + (1 - pi) * nb)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-8, atol=1e-8)
    tail = (1 - pi) * stats.nbinom(theta, theta / (theta + mu)).sf(X.numpy()[-1])  # mass above the grid
    assert np.exp(ours.numpy()).sum() + tail == pytest.approx(1.0, abs=1e-9)


def likelihood(cls, genes=5):
    torch.manual_seed(0)
    lik = cls((genes,)).double()
    if hasattr(lik, "log_theta"):
        with torch.no_grad():
            lik.log_theta.copy_(torch.linspace(-1, 2, genes))
    return lik


@pytest.mark.parametrize("cls", [PoissonLikelihood, NBLikelihood, ZINBLikelihood])
def test_the_library_size_is_read_from_x(cls):
    """log p(x | z) = sum_g log p(x_g; l rho_g [, theta_g, pi_g]) with l = sum_g x_g (Lopez et al. 2018)."""
    lik = likelihood(cls).eval()
    params = torch.randn(3, cls.params_per_value * 5, dtype=torch.float64)
    x = torch.tensor([[0, 3, 1, 0, 7], [12, 0, 0, 2, 1], [0, 0, 0, 0, 1]], dtype=torch.float64)
    got = lik(params).log_prob(x).detach()
    rho = torch.softmax(params[:, :5], -1)
    mu = x.sum(-1, keepdim=True).numpy() * rho.numpy()
    theta = lik.log_theta.exp().detach().numpy() if hasattr(lik, "log_theta") else None
    for i in range(3):
        if cls is PoissonLikelihood:
            want = stats.poisson(mu[i]).logpmf(x[i].numpy()).sum()
        else:
            p = stats.nbinom(theta, theta / (theta + mu[i])).pmf(x[i].numpy())
            pi = torch.sigmoid(params[i, 5:]).numpy() if cls is ZINBLikelihood else 0 * p
            want = np.log(pi * (x[i].numpy() == 0) + (1 - pi) * p).sum()
        assert float(got[i]) == pytest.approx(want, rel=1e-6)  # eps = 1e-8 inside the logs


def test_the_mean_uses_the_running_library_and_the_dropout():
    lik = likelihood(ZINBLikelihood).train()
    params = torch.randn(2, 10, dtype=torch.float64)
    x = torch.tensor([[1, 2, 3, 4, 10], [0, 0, 0, 0, 30]], dtype=torch.float64)
    lik(params).log_prob(x)  # a training batch: its mean library size is (20 + 30) / 2
    assert float(lik.library) == pytest.approx(25.0)
    mean = lik.eval()(params).mean
    want = 25.0 * torch.softmax(params[:, :5], -1) * torch.sigmoid(-params[:, 5:])
    torch.testing.assert_close(mean, want)


def test_samples_have_the_nb_mean_and_variance():
    lik = likelihood(NBLikelihood, genes=3).eval()
    lik.library.fill_(60.0)
    params = torch.zeros(1, 3, dtype=torch.float64)   # rho = 1/3 each: mu = 20
    draws = lik(params).sample((40000,)).squeeze(1)   # (40000, 3)
    theta = lik.log_theta.exp().detach()
    torch.testing.assert_close(draws.mean(0), torch.full((3,), 20.0, dtype=torch.float64), rtol=0.03, atol=0)
    torch.testing.assert_close(draws.var(0), 20.0 + 400.0 / theta, rtol=0.08, atol=0)


def test_counts_must_be_whole_non_negative_numbers():
    lik = likelihood(NBLikelihood)
    lik.check_data(torch.tensor([[0.0, 3.0, 1.0, 0.0, 7.0]]), "training data")
    for bad in (0.5, -1.0):
        with pytest.raises(VaekitError, match=r"the nb likelihood models counts .*--layer counts"):
            lik.check_data(torch.tensor([[0.0, bad, 1.0, 0.0, 7.0]]), "training data")
