"""The sliced-Wasserstein auto-encoder (Kolouri et al. 2019): the distance against known answers,
the loss by hand, and one epoch of training and evaluation."""
import json

import numpy as np
import pytest
import torch

from vaekit import rundir
from vaekit.data import load_data
from vaekit.errors import VaekitError
from vaekit.models import elbo_terms
from vaekit.objectives.swae import SlicedWasserstein, random_directions, sliced_wasserstein

from conftest import small_model

X = load_data("digits").train.x[:32]


def test_distance_of_a_set_to_itself_is_zero():
    torch.manual_seed(0)
    z = torch.randn(64, 5)
    assert float(sliced_wasserstein(z, z, projections=20)) == 0.0
    # and to a shuffled copy of itself: the same empirical distribution
    assert float(sliced_wasserstein(z, z[torch.randperm(64)], projections=20)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_one_dimension_is_the_exact_wasserstein_distance(p):
    """In 1-D every unit direction is +-1: SW_p^p is W_p^p, the mean |sorted difference|^p."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=50), rng.gamma(2.0, size=50)
    by_hand = np.mean(np.abs(np.sort(a) - np.sort(b)) ** p)
    got = sliced_wasserstein(torch.tensor(a)[:, None], torch.tensor(b)[:, None], projections=7, p=p)
    assert float(got) == pytest.approx(by_hand, rel=1e-10)


def test_shifted_gaussians_give_the_squared_shift_over_dimensions():
    """N(0, I) against N(s, I): each slice is W_2^2 = (theta . s)^2, whose mean over the sphere is ||s||^2 / d."""
    torch.manual_seed(2)
    d, n = 4, 1000
    shift = torch.tensor([2.0, -1.0, 0.5, 1.0])                          # ||s||^2 = 6.25
    x, y = torch.randn(n, d), torch.randn(n, d)
    x, y = x - x.mean(0), y - y.mean(0) + shift                         # sample means exactly 0 and s
    got = float(sliced_wasserstein(x, y, projections=4000))
    assert got == pytest.approx(6.25 / d, rel=0.06)  # ~3 sigma: over 20 seeds all fell within 3.1%


def test_directions_are_unit_vectors():
    torch.manual_seed(3)
    theta = random_directions(100, 6, torch.zeros(1))
    assert theta.shape == (100, 6)
    torch.testing.assert_close(theta.norm(dim=1), torch.ones(100))


def test_loss_by_hand():
    model = small_model("swae")
    torch.manual_seed(5)
    with torch.no_grad():
        got = SlicedWasserstein(lam=3.0, projections=9)(model, X)
    torch.manual_seed(5)                                   # the same draws, in the objective's order
    with torch.no_grad():
        out = model(X)
        t = elbo_terms(out, X)
        z = out.latents[0].z.numpy()                                     # (B, D)
        zp = out.latents[0].prior.sample((32,)).numpy()                  # (B, D)
        theta = torch.randn(9, z.shape[1]).numpy()
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    sw = np.mean((np.sort(z @ theta.T, axis=0) - np.sort(zp @ theta.T, axis=0)) ** 2)
    assert float(got.terms["sw"]) == pytest.approx(sw, rel=1e-5)
    assert float(got.loss) == pytest.approx(float(t.recon.mean()) + 3.0 * sw, rel=1e-5)
    assert float(got.terms["elbo"]) == pytest.approx(float(t.elbo.mean()), rel=1e-6)  # the true bound
    assert {"recon", "kl"} <= set(got.terms)


def test_bad_options_and_inputs_are_refused():
    for kw in ({"lam": -1.0}, {"projections": 0}, {"p": 0.5}):
        with pytest.raises(VaekitError, match="swae"):
            SlicedWasserstein(**kw)
    with pytest.raises(VaekitError, match="same shape"):
        sliced_wasserstein(torch.zeros(4, 2), torch.zeros(5, 2))


def test_variant_trains_with_its_objective(zoo_run):
    """test_contract.py trains and evaluates swae; here its run was trained with the swae objective."""
    config = json.loads((zoo_run("swae") / rundir.CONFIG).read_text())
    assert config["train"]["objective"]["name"] == "swae"
