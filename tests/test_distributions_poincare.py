"""The Poincaré ball maths, the wrapped normal and the pvae variant (Mathieu et al. 2019)."""
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

import vaekit
from vaekit.data import load_data
from vaekit.distributions.kl import kl_term
from vaekit.distributions.poincare import (WrappedNormal, WrappedNormalOrigin, WrappedNormalPosterior,
                                           conformal_factor, distance, expmap, expmap0, logmap, logmap0,
                                           mobius_add)
from vaekit.errors import VaekitError

D64 = torch.float64


def ball_points(n, d, c, radius=0.9, seed=0):
    """n points spread inside the ball of curvature -c, up to ``radius`` of its edge, (n, d)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, d, generator=g, dtype=D64)
    r = torch.rand(n, 1, generator=g, dtype=D64) * radius / math.sqrt(c)
    return u / u.norm(dim=-1, keepdim=True) * r


# -- the ball -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [0.3, 1.0, 2.5])
def test_mobius_addition_by_hand(c):
    x, y = ball_points(50, 1, c, seed=1), ball_points(50, 1, c, seed=2)
    # in one dimension, x (+) y = (x + y) / (1 + c x y): the relativistic velocity addition
    assert torch.allclose(mobius_add(x, y, c), (x + y) / (1 + c * x * y), atol=1e-12)
    x, y = ball_points(50, 4, c, seed=3), ball_points(50, 4, c, seed=4)
    assert torch.allclose(mobius_add(-x, mobius_add(x, y, c), c), y, atol=1e-10)   # left cancellation
    assert torch.allclose(mobius_add(torch.zeros_like(x), y, c), y)


@pytest.mark.parametrize("c", [0.3, 1.0, 2.5])
def test_exp_and_log_maps_are_inverses(c):
    x, y = ball_points(64, 3, c, seed=5), ball_points(64, 3, c, seed=6)
    u = torch.randn(64, 3, dtype=D64, generator=torch.Generator().manual_seed(7))
    u = u * 1.5 / conformal_factor(x, c)   # geodesic lengths ~ 3: well inside the projection radius
    assert torch.allclose(logmap(x, expmap(x, u, c), c), u, atol=1e-8)
    assert torch.allclose(expmap(x, logmap(x, y, c), c), y, atol=1e-10)
    assert torch.allclose(logmap0(expmap0(u, c), c), u, atol=1e-8)
    assert torch.allclose(expmap0(logmap0(y, c), c), y, atol=1e-10)
    zero = torch.zeros_like(x)
    assert torch.allclose(expmap(zero, u, c), expmap0(u, c), atol=1e-12)
    assert torch.allclose(logmap(zero, y, c), logmap0(y, c), atol=1e-12)


@pytest.mark.parametrize("c", [0.3, 1.0, 2.5])
def test_distance_known_answers(c):
    z = ball_points(64, 3, c, radius=0.99, seed=8)
    by_hand = 2 / math.sqrt(c) * torch.atanh(math.sqrt(c) * z.norm(dim=-1))
    assert torch.allclose(distance(torch.zeros_like(z), z, c), by_hand, atol=1e-10)
    x, y = ball_points(64, 3, c, seed=9), ball_points(64, 3, c, seed=10)
    assert torch.allclose(distance(x, y, c), distance(y, x, c), atol=1e-10)
    # the geodesic length of log_x(y) is lambda_x |log_x(y)| (the metric is lambda_x^2 I)
    length = (conformal_factor(x, c) * logmap(x, y, c)).norm(dim=-1)
    assert torch.allclose(length, distance(x, y, c), atol=1e-10)
    # nearby points: d(x, x + h) = lambda_x |h| to first order, lambda_x = 2 / (1 - c|x|^2)
    h = 1e-7 * torch.randn_like(x)
    lam = 2 / (1 - c * x.pow(2).sum(-1))
    assert torch.allclose(distance(x, x + h, c), lam * h.norm(dim=-1), rtol=1e-5)


# -- the wrapped normal -------------------------------------------------------------------------------
def polar_grid(c, n_r=1500, n_t=400, geodesic=False):
    """Cell centres z (n_r, n_t, 2) covering the disc of curvature -c, and each cell's area (n_r, 1).

    ``geodesic``: radii uniform in hyperbolic distance s from the origin, area = Riemannian volume
    (sinh(sqrt(c) s) / sqrt(c)) ds dtheta; else radii uniform in rho < 1/sqrt(c), area = rho drho dtheta.
    """
    sc, t = math.sqrt(c), (torch.arange(n_t, dtype=D64) + 0.5) * 2 * math.pi / n_t
    if geodesic:
        smax = 14 / sc
        s = (torch.arange(n_r, dtype=D64) + 0.5) * smax / n_r
        rho, area = torch.tanh(sc * s / 2) / sc, torch.sinh(sc * s) / sc * smax / n_r
    else:
        rho = (torch.arange(n_r, dtype=D64) + 0.5) / (n_r * sc)
        area = rho / (n_r * sc)
    z = torch.stack([rho[:, None] * t.cos(), rho[:, None] * t.sin()], -1)
    return z, (area * 2 * math.pi / n_t)[:, None]


@pytest.mark.parametrize("c,loc,scale", [(0.7, [0.3, -0.2], [0.5, 0.8]), (1.0, [0.0, 0.0], [1.0, 1.0]),
                                         (1.3, [0.6, 0.5], [0.3, 0.6])])
def test_density_integrates_to_one_on_the_disc(c, loc, scale):
    q = WrappedNormal(torch.tensor(loc, dtype=D64), torch.tensor(scale, dtype=D64), c)
    z, dm = polar_grid(c, geodesic=True)
    assert float((q.log_prob_riemannian(z).exp() * dm).sum()) == pytest.approx(1.0, abs=2e-4)
    if c < 1.3:  # Lebesgue density on a plain polar grid (too coarse near the edge for loc near it)
        z, dz = polar_grid(c, n_r=3000)
        assert float((q.log_prob(z).exp() * dz).sum()) == pytest.approx(1.0, abs=2e-3)


def test_samples_match_the_density_by_monte_carlo():
    torch.manual_seed(0)
    c = 0.7
    a = WrappedNormal(torch.zeros(2, dtype=D64), torch.full((2,), 1.5, dtype=D64), c)
    b = WrappedNormal(torch.tensor([0.3, -0.2], dtype=D64), torch.tensor([0.5, 0.8], dtype=D64), c)
    z = a.sample((200_000,))
    # importance sampling from a: E_a[p_b / p_a] = integral of p_b = 1 only if p_a is a's density
    assert float((b.log_prob(z) - a.log_prob(z)).exp().mean()) == pytest.approx(1.0, abs=0.02)
    # scale is a geodesic length: E d_c(loc, z)^2 = sum scale^2
    zb = b.sample((200_000,))
    assert float(distance(b.loc, zb, c).pow(2).mean()) == pytest.approx(0.25 + 0.64, rel=0.01)
    # batched: a batch of locs, samples (S, B, d), log_prob (S, B)
    q = WrappedNormal(expmap0(torch.randn(5, 3), c), torch.rand(5, 3) + 0.1, c)
    s = q.rsample((7,))
    assert s.shape == (7, 5, 3) and q.log_prob(s).shape == (7, 5) and q.expand((7, 5)).log_prob(s).shape == (7, 5)


@pytest.mark.parametrize("c", [0.5, 1.0, 3.0])
def test_samples_stay_inside_the_ball(c):
    torch.manual_seed(1)
    near_edge = torch.tensor([[0.999, 0.0, 0.0], [0.0, 0.0, 0.0]]) / math.sqrt(c)
    q = WrappedNormal(near_edge, torch.tensor([[5.0, 5.0, 5.0], [20.0, 20.0, 20.0]]), c)   # float32, wide
    z = q.rsample((5000,))
    assert bool((math.sqrt(c) * z.norm(dim=-1) < 1).all())
    assert bool(torch.isfinite(q.log_prob(z)).all())


def test_small_curvature_approaches_a_euclidean_normal():
    # as c -> 0 the metric lambda^2 I tends to 4 I (lambda -> 2), so a geodesic scale s is s/2 in the
    # ball's coordinates: N^W(loc, s) -> N(loc, (s/2)^2), as a Lebesgue density
    torch.manual_seed(2)
    loc, scale = torch.tensor([0.3, -1.0, 2.0], dtype=D64), torch.tensor([0.5, 1.0, 2.0], dtype=D64)
    euclid = Normal(loc, scale / 2)
    z = euclid.sample((100,))
    q = WrappedNormal(loc, scale, 1e-7)
    assert torch.allclose(q.log_prob(z), euclid.log_prob(z).sum(-1), atol=1e-4)
    far = WrappedNormal(loc, scale, 1e-2)   # curvature visibly changes it
    assert not torch.allclose(far.log_prob(z), euclid.log_prob(z).sum(-1), atol=1e-2)
    s = q.sample((100_000,))
    assert torch.allclose(s.mean(0), loc, atol=0.02) and torch.allclose(s.std(0), scale / 2, rtol=0.02)


def test_kl_is_the_monte_carlo_estimate():
    q = WrappedNormalPosterior(8, 3, curvature=0.7)(torch.randn(4, 8))
    p = WrappedNormalOrigin(3, curvature=0.7)()
    with pytest.raises(NotImplementedError):
        kl_divergence(q, p)
    z = q.rsample()
    assert torch.equal(kl_term(q, p, z), q.log_prob(z) - p.log_prob(z))
    assert torch.equal(q.mean, q.loc) and q.variance.shape == (4, 3)


def test_bad_settings_are_refused(tmp_path):
    for bad in (0.0, -1.0):
        with pytest.raises(VaekitError, match="curvature"):
            WrappedNormalPosterior(8, 3, curvature=bad)
    with pytest.raises(VaekitError, match="curvature"):
        vaekit.train("digits", model="pvae", epochs=1, progress=False, out=tmp_path / "a", sets=["model.prior.args.curvature=1.0"])
    with pytest.raises(VaekitError, match="wrapped-normal"):
        vaekit.train("digits", model="vae", epochs=1, progress=False, out=tmp_path / "b",
                     sets=["model.prior.name=wrapped-normal-origin"])


def test_trained_pvae_embeds_inside_the_ball(zoo_run):
    """test_contract.py trains and evaluates pvae; here its codes lie inside the ball of curvature -0.7."""
    loaded = vaekit.load(zoo_run("pvae"))
    z = loaded.embed(load_data("digits").test.x[:50])
    assert bool((math.sqrt(0.7) * z.norm(dim=-1) < 1).all())
