"""Importance-sampled log p(x) against a linear-Gaussian model whose log p(x) is exact."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from vaekit.config import ModelConfig, Part
from vaekit.data.types import TensorData
from vaekit.evaluate import evaluate_elbo, evaluate_log_likelihood, log_likelihood
from vaekit.models import build_model

SIGMA = 0.5
W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # orthogonal columns: the posterior is diagonal
B = torch.tensor([0.3, -0.2, 0.1])


class Identity(torch.nn.Module):
    out_dim = 3

    def forward(self, x, c=None):
        return x


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(2, 3)
        with torch.no_grad():
            self.net.weight.copy_(W)
            self.net.bias.copy_(B)

    def forward(self, z, c=None):
        return self.net(z)


def linear_gaussian_vae(mean_scale=1.0):
    """x = W z + b + sigma * eps; the encoder head is set to the exact posterior (times mean_scale)."""
    cfg = ModelConfig(likelihood=Part("gaussian", {"sigma": SIGMA}), latent_dim=2, data_shape=[3])
    model = build_model(cfg, encoder=Identity(), decoder=Linear())
    precision = torch.eye(2) + W.T @ W / SIGMA ** 2          # diagonal, since W's columns are orthogonal
    cov = torch.linalg.inv(precision)
    gain = cov @ W.T / SIGMA ** 2                            # posterior mean = gain (x - b)
    with torch.no_grad():
        head = model.posterior.head
        head.weight.zero_()
        head.bias.zero_()
        head.weight[:2] = mean_scale * gain
        head.bias[:2] = -mean_scale * gain @ B
        head.bias[2:] = torch.log(torch.diagonal(cov))
    return model.eval()


def exact_log_px(x):
    return MultivariateNormal(B, W @ W.T + SIGMA ** 2 * torch.eye(3)).log_prob(x)


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(64, 3) * 1.5


def test_exact_posterior_gives_exact_log_likelihood(x):
    model = linear_gaussian_vae()
    torch.manual_seed(1)
    for k in (1, 10):
        assert torch.allclose(log_likelihood(model, x, k=k), exact_log_px(x), atol=1e-4)
    # with the exact posterior the ELBO's gap KL(q || p(z|x)) is 0: it matches up to its one-sample noise
    torch.manual_seed(2)
    many = torch.randn(4000, 3) * 1.5
    elbo = evaluate_elbo(model, TensorData(many))["elbo"]
    assert elbo == pytest.approx(float(exact_log_px(many).mean()), abs=0.1)


def test_importance_sampling_tightens_a_poor_posterior(x):
    model = linear_gaussian_vae(mean_scale=0.6)  # a deliberately biased encoder
    exact = float(exact_log_px(x).mean())
    torch.manual_seed(3)
    elbo = evaluate_elbo(model, TensorData(x))["elbo"]
    torch.manual_seed(3)
    iw10 = evaluate_log_likelihood(model, TensorData(x), k=10)["log_likelihood"]
    torch.manual_seed(3)
    result = evaluate_log_likelihood(model, TensorData(x), k=2000)
    assert elbo < iw10 < result["log_likelihood"] <= exact + 3 * result["log_likelihood_se"]
    assert result["log_likelihood"] == pytest.approx(exact, abs=0.05)
    assert exact - elbo > 0.2  # the gap the bound closes is real


def test_conditional_model_log_likelihood_shapes():
    cfg = ModelConfig(network=Part("mlp", {"hidden": [8]}), likelihood=Part("bernoulli"), latent_dim=2,
                      data_shape=[1, 4, 4], conditional=True, num_classes=3)
    model = build_model(cfg)
    x = torch.rand(5, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 1, 0])
    ll = log_likelihood(model, x, y, k=7)
    assert ll.shape == (5,) and torch.isfinite(ll).all()
    # K = 1 is a single-sample ELBO: at most log p(x), and Bernoulli log-likelihoods are below 0
    assert (ll < 0).all() and not math.isnan(float(ll.sum()))
