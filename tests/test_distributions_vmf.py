"""The hyperspherical latent: ``VonMisesFisher``, ``HypersphericalUniform``, log-Bessel, variant ``svae``."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import ive
from torch.distributions import Independent, Normal, kl_divergence

import vaekit
from vaekit.distributions import vmf
from vaekit.distributions.vmf import (HypersphericalUniform, UniformSphere, VonMisesFisher, VonMisesFisherPosterior,
                                      bessel_ratio, log_bessel_iv)
from vaekit.errors import VaekitError


def _unit(m, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(m, generator=g, dtype=dtype), dim=0)


def _vmf(m, kappa, n=1, seed=0, dtype=torch.float64):
    return VonMisesFisher(_unit(m, seed, dtype).expand(n, m), torch.full((n,), float(kappa), dtype=dtype))


def test_log_bessel_matches_scipy_and_its_gradient_is_the_ratio():
    x = torch.logspace(-3, 4, 300, dtype=torch.float64)
    for v in [0.0, 0.5, 1.0, 1.5, 2.0, 4.0, 9.5, 12.0, 20.5, 30.0, 49.5, 50.0]:
        ref = np.log(ive(v, x.numpy())) + x.numpy()            # ive = I_v(x) exp(-x)
        ok = np.isfinite(ref)                                  # ive underflows to 0 for large v, tiny x
        got = log_bessel_iv(v, x).numpy()
        np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-8, atol=1e-8, err_msg=f"v={v}")
        xg = x.clone().requires_grad_(True)
        grad, = torch.autograd.grad(log_bessel_iv(v, xg).sum(), xg)
        want = ive(v + 1, x.numpy()) / ive(v, x.numpy()) + v / x.numpy()
        ok = np.isfinite(want)
        np.testing.assert_allclose(grad.numpy()[ok], want[ok], rtol=1e-7, err_msg=f"v={v}")
    assert log_bessel_iv(0.0, torch.tensor([1e-3])).dtype == torch.float32  # keeps the caller's dtype


def test_log_prob_integrates_to_one_on_the_circle():
    theta = torch.linspace(-math.pi, math.pi, 20001, dtype=torch.float64)
    z = torch.stack([theta.cos(), theta.sin()], -1)                     # (T, 2) on S^1
    for kappa in [0.01, 1.0, 10.0, 300.0]:
        q = VonMisesFisher(_unit(2).expand(len(theta), 2), torch.full((len(theta),), kappa, dtype=torch.float64))
        total = torch.trapezoid(q.log_prob(z).exp(), theta)
        assert abs(float(total) - 1.0) < 1e-6, (kappa, float(total))


def test_log_prob_on_the_two_sphere_is_normalized_and_is_the_known_density():
    torch.manual_seed(0)
    u = HypersphericalUniform(3, torch.zeros(3, dtype=torch.float64)).sample((200000,))  # uniform on S^2
    for kappa in [0.5, 3.0]:
        q = _vmf(3, kappa, len(u))
        mc = (q.log_prob(u).exp() * 4 * math.pi).mean()                # E_uniform[q / (1/area)] = 1
        assert abs(float(mc) - 1.0) < 0.015, (kappa, float(mc))
    # on S^2, C_3(k) = k / (4 pi sinh k): check the constant itself at small and large k
    for kappa in [1e-3, 2.0, 50.0, 500.0]:
        q = _vmf(3, kappa)
        at_mu = q.log_prob(q.loc)                                       # log C + k
        by_hand = math.log(kappa / (2 * math.pi)) - math.log1p(-math.exp(-2 * kappa))
        assert abs(float(at_mu) - by_hand) < 1e-9, kappa


def test_entropy_and_kl_to_the_uniform_prior():
    # S^2 closed forms: H = log(4 pi sinh k / k) - k coth k + 1
    for kappa in [0.1, 2.0, 40.0]:
        h = math.log(4 * math.pi * math.sinh(kappa) / kappa) - kappa / math.tanh(kappa) + 1
        assert abs(float(_vmf(3, kappa).entropy()) - h) < 1e-9, kappa
    torch.manual_seed(1)
    for m in [2, 3, 10]:
        p = HypersphericalUniform(m, torch.zeros(m, dtype=torch.float64))
        for kappa in [0.5, 5.0, 100.0]:
            q = _vmf(m, kappa, 30000)
            z = q.sample()
            diff = q.log_prob(z) - p.log_prob(z)                        # (N,)
            kl = kl_divergence(q, p)
            assert kl.shape == (30000,) and float(kl[0]) > 0
            assert abs(float(diff.mean() - kl[0])) < 4 * float(diff.std()) / math.sqrt(len(z)) + 1e-6, (m, kappa)
        assert float(kl_divergence(_vmf(m, 1e-4), p)) < 1e-6              # k -> 0: the uniform itself


def test_samples_are_unit_vectors_with_the_right_mean_and_variance():
    torch.manual_seed(2)
    for m in [2, 3, 10]:
        for kappa in [0.5, 5.0, 1e4]:
            q = _vmf(m, kappa, 1, seed=m)
            z = q.rsample((50000,))                                     # (N, 1, m)
            assert z.shape == (50000, 1, m)
            assert float((z.norm(dim=-1) - 1).abs().max()) < 1e-12
            se = z.std(0).max() / math.sqrt(len(z))
            assert float((z.mean(0) - q.expected_vector).abs().max()) < 5 * se + 1e-9, (m, kappa)
            torch.testing.assert_close(z.var(0), q.variance, rtol=0.03, atol=1e-6)
    # the Householder reflection: mu = e1 exactly, and a batch of different means
    e1 = torch.zeros(3)
    e1[0] = 1.0
    assert float((VonMisesFisher(e1, torch.tensor(1e4)).sample((100,)) - e1).norm(dim=-1).max()) < 0.1
    locs = torch.nn.functional.normalize(torch.randn(5, 4), dim=-1)
    z = VonMisesFisher(locs, torch.full((5,), 1e5)).sample((3,))
    assert z.shape == (3, 5, 4) and float((z - locs).norm(dim=-1).max()) < 0.02


def test_the_rejection_loop_is_bounded(monkeypatch):
    torch.manual_seed(3)
    for kappa in [1e-6, 1e9]:
        z = VonMisesFisher(_unit(5, dtype=torch.float32).expand(1000, 5), torch.full((1000,), kappa)).rsample()
        assert bool(torch.isfinite(z).all()) and float((z.norm(dim=-1) - 1).abs().max()) < 1e-5
    calls = []
    real_rand = torch.rand_like
    monkeypatch.setattr(vmf, "MAX_TRIES", 3)
    monkeypatch.setattr(vmf.torch, "rand_like", lambda t: calls.append(1) or real_rand(t).fill_(1.0 - 1e-16))
    z = _vmf(4, 2.0, 50).rsample()  # u ~ 1 rejects (almost) everything: the loop stops after 3 rounds
    assert len(calls) == 3 and float((z.norm(dim=-1) - 1).abs().max()) < 1e-12


def _reparam_gradient_by_quadrature(m, kappa):
    """E_pi[dw/dk] where pi(eps) ~ Beta(eps; d/2, d/2) * acceptance(eps): the sampler's g_rep, by quadrature."""
    d = m - 1.0
    eps = torch.linspace(1e-7, 1 - 1e-7, 400001, dtype=torch.float64)
    k = torch.tensor(kappa, dtype=torch.float64, requires_grad=True)
    b = d / (2 * k + torch.sqrt(4 * k * k + d * d))
    w = (1 - (1 + b) * eps) / (1 - (1 - b) * eps)
    x0 = (1 - b) / (1 + b)
    c = k * x0 + d * torch.log(1 - x0 * x0)
    accept = torch.exp(k * w + d * torch.log(1 - x0 * w) - c)           # Wood's acceptance, textbook form
    density = (eps * (1 - eps)) ** (d / 2 - 1) * accept
    dw, = torch.autograd.grad((w * density.detach()).sum() / density.detach().sum(), k)
    return float(dw)


def test_gradients_reach_loc_and_concentration():
    torch.manual_seed(4)
    loc = torch.randn(8, 5, requires_grad=True)
    kappa = torch.full((8,), 3.0, requires_grad=True)
    target = torch.nn.functional.normalize(torch.randn(5), dim=0)
    z = VonMisesFisher(torch.nn.functional.normalize(loc, dim=-1), kappa).rsample((4,))
    loss = ((z - target) ** 2).sum()
    g_loc, g_kappa = torch.autograd.grad(loss, [loc, kappa])
    for g in (g_loc, g_kappa):
        assert bool(torch.isfinite(g).all()) and bool((g != 0).all())
    # the gradient w.r.t. k is Naesseth et al.'s g_rep (no g_cor): the sampler's matches it by quadrature
    for m, k0 in [(3, 2.0), (10, 10.0)]:
        k = torch.tensor(k0, dtype=torch.float64, requires_grad=True)
        mu = _unit(m)
        w = VonMisesFisher(mu.expand(200000, m), k.expand(200000)).rsample() @ mu
        g, = torch.autograd.grad(w.mean(), k)
        want = _reparam_gradient_by_quadrature(m, k0)
        assert abs(float(g) - want) < 0.01 * abs(want), (m, float(g), want)
        exact = float(torch.autograd.grad(bessel_ratio(m, k), k)[0])    # d E[w] / dk, biased away from g_rep
        assert 0.5 * exact < want < 1.01 * exact


def test_uniform_prior_and_refused_pairings():
    p = UniformSphere(3)()
    torch.manual_seed(5)
    z = p.sample((20000,))
    assert z.shape == (20000, 3) and float((z.norm(dim=-1) - 1).abs().max()) < 1e-6
    assert float(z.mean(0).abs().max()) < 0.03 and float((z.var(0) - 1 / 3).abs().max()) < 0.01
    torch.testing.assert_close(p.log_prob(z[:4]), torch.full((4,), -math.log(4 * math.pi)))
    torch.testing.assert_close(p.variance, torch.full((3,), 1 / 3))
    assert p.expand((2, 4)).log_prob(torch.randn(2, 4, 3)).shape == (2, 4)
    q = VonMisesFisherPosterior(6, 3)(torch.randn(2, 6))
    assert q.batch_shape == (2,) and q.event_shape == (3,) and bool((q.concentration > 1).all())
    normal = Independent(Normal(torch.zeros(2, 3), torch.ones(2, 3)), 1)
    with pytest.raises(VaekitError, match="uniform-sphere"):
        kl_divergence(q, normal)
    with pytest.raises(VaekitError, match="vmf posterior"):
        kl_divergence(normal, p)
    with pytest.raises(VaekitError, match="same latent_dim"):
        kl_divergence(q, UniformSphere(4)())
    for part in (VonMisesFisherPosterior, UniformSphere):
        with pytest.raises(VaekitError, match="latent_dim >= 2"):
            part(*([6] if part is VonMisesFisherPosterior else []), 1)


def test_trained_svae_lives_on_the_sphere(zoo_run, tmp_path):
    """test_contract.py trains and evaluates svae; here its codes, means and prior draws on the sphere."""
    loaded = vaekit.load(zoo_run("svae"))
    x = torch.as_tensor(vaekit.load_data("digits").test.x[:6])
    with torch.no_grad():
        z = loaded.embed(x)                                             # the mean direction mu: on the sphere
        assert z.shape == (6, 4) and float((z.norm(dim=-1) - 1).abs().max()) < 1e-5
        q = loaded.encode(x)
        assert bool((q.expected_vector.norm(dim=-1) < 1).all()) and torch.equal(q.mean, q.mode)
        prior_z = loaded.prior_sample(7)
        assert float((prior_z.norm(dim=-1) - 1).abs().max()) < 1e-5
        assert loaded.decode(prior_z).mean.shape == (7, *loaded.data_shape)
        assert loaded.sample(3).shape == (3, *loaded.data_shape)
    with pytest.raises(VaekitError, match="latent_dim >= 2"):
        vaekit.train("digits", model="svae", epochs=1, out=tmp_path / "one", progress=False, latent_dim=1)


@pytest.mark.parametrize("variant,word", [("svae", "sphere"), ("pvae", "Poincaré ball")])
def test_a_part_can_say_what_the_model_cannot_do(variant, word):
    """The sphere's and the ball's posteriors switch off the latent grid; the plots say why in one line."""
    from conftest import small_model
    from vaekit.registry import PLOTS

    model = small_model(variant)
    assert model.can("encode") and model.can("sample") and not model.can("latent_grid")
    assert word in model.why_not("latent_grid")
    for plot in ("manifold", "traversal", "interpolation"):
        assert word in PLOTS.get(plot).applies_to(model)
    assert PLOTS.get("latent").applies_to(model) is None
    with pytest.raises(VaekitError, match=word):
        model.require("latent_grid", "the manifold plot")
    assert small_model("vae").can("latent_grid")
