"""The Gumbel-softmax categorical latent: posterior ``gumbel``, prior ``uniform-categorical``, variant ``gumbel-vae``."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import kl_divergence

import vaekit
from vaekit.distributions.gumbel import GroupedConcrete, GumbelSoftmaxPosterior, UniformCategorical, group_sizes
from vaekit.errors import VaekitError


def _groups(t, k=10):
    return t.unflatten(-1, (-1, k))


def test_samples_lie_on_the_simplex_per_group():
    torch.manual_seed(0)
    q = GumbelSoftmaxPosterior(8, 30)(torch.randn(5, 8))
    assert q.batch_shape == (5,) and q.event_shape == (30,)
    z = q.rsample((4,))                                              # (4, 5, 30)
    assert z.shape == (4, 5, 30) and bool((z >= 0).all())
    torch.testing.assert_close(_groups(z).sum(-1), torch.ones(4, 5, 3))
    torch.testing.assert_close(_groups(q.mean).sum(-1), torch.ones(5, 3))
    # a remainder group: latent_dim 4 with 10 categories is one group of 4
    assert group_sizes(4, 10) == [4] and group_sizes(34, 10) == [10, 10, 10, 4]
    r = GroupedConcrete(torch.randn(2, 34), 0.5, [10, 10, 10, 4]).rsample()
    torch.testing.assert_close(r[:, :30].unflatten(-1, (3, 10)).sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(r[:, 30:].sum(-1), torch.ones(2))
    with pytest.raises(VaekitError, match="one category"):
        group_sizes(11, 10)


def test_low_temperature_samples_are_nearly_one_hot():
    torch.manual_seed(0)
    logits = torch.randn(200, 30)
    hot = _groups(GroupedConcrete(logits, 0.01, [10] * 3).rsample()).max(-1).values
    warm = _groups(GroupedConcrete(logits, 5.0, [10] * 3).rsample()).max(-1).values
    assert float((hot > 0.99).float().mean()) > 0.97 and hot.mean() > 0.99
    assert warm.mean() < 0.5
    # and the argmax follows the categorical probabilities (Gumbel-max)
    one = GroupedConcrete(torch.tensor([[0.0, math.log(3.0)]]).expand(4000, 2), 0.01, [2]).rsample()
    assert abs(float((one[:, 1] > 0.5).float().mean()) - 0.75) < 0.03


def test_analytic_kl_is_the_categorical_kl_to_uniform():
    torch.manual_seed(0)
    logits = torch.randn(6, 30)
    q, p = GroupedConcrete(logits, 0.5, [10] * 3), UniformCategorical(30)()
    probs = _groups(logits).softmax(-1)                               # (6, 3, 10)
    by_hand = (probs * torch.log(probs * 10)).sum((-1, -2))           # sum_groups sum_k p log(p K)
    torch.testing.assert_close(kl_divergence(q, p), by_hand)
    assert bool((kl_divergence(q, p) >= 0).all())
    torch.testing.assert_close(kl_divergence(q.expand((2, 6)), p), by_hand.expand(2, 6))


def test_prior_log_prob_is_the_concrete_density():
    """Maddison et al. 2017 eq. 1 with uniform pi: log (K-1)! + (K-1) log t - (t+1) sum log y - K log sum y^-t."""
    torch.manual_seed(0)
    prior = UniformCategorical(20, categories=10, temperature=0.7)()
    z = prior.sample((3,))                                            # (3, 20)
    t, k = 0.7, 10
    y = _groups(z).double()
    # pi_k = 1/K: sum_k log pi_k = -K log K and sum_k pi_k y_k^-t = (sum_k y_k^-t) / K
    per_group = (math.lgamma(k) + (k - 1) * math.log(t) - k * math.log(k)
                 - (t + 1) * y.log().sum(-1) - k * torch.log(y.pow(-t).sum(-1) / k))
    torch.testing.assert_close(prior.log_prob(z).double(), per_group.sum(-1), rtol=1e-4, atol=1e-3)
    assert prior.log_prob(z).shape == (3,)


def test_gumbel_needs_the_matching_prior():
    q = GroupedConcrete(torch.zeros(2, 30), 0.5, [10] * 3)
    with pytest.raises(VaekitError, match="uniform-categorical"):
        kl_divergence(q, torch.distributions.Independent(torch.distributions.Normal(torch.zeros(30), 1.0), 1))


def test_gumbel_vae_evaluates_with_three_groups_of_ten(tmp_path):
    """Beyond test_contract.py's row (latent 4: one group): the variant's own 30 latents, its KL and log p(x)."""
    model = vaekit.train("digits", model="gumbel-vae", epochs=1, out=tmp_path / "r", progress=False, hidden=[32],
                         batch_size=256)
    assert model.latent_dim == 30
    from vaekit.evaluate import evaluate_elbo, evaluate_log_likelihood

    data = vaekit.load_data("digits").test
    torch.manual_seed(0)
    elbo = evaluate_elbo(model, data)
    ll = evaluate_log_likelihood(model, data, k=10)
    assert math.isfinite(elbo["elbo"]) and math.isfinite(elbo["kl"]) and elbo["kl"] >= 0
    assert math.isfinite(ll["log_likelihood"])
    z = model.embed(data.x[:8])
    torch.testing.assert_close(_groups(z).sum(-1), torch.ones(8, 3))
