"""The Hamiltonian VAE (vaekit/models/hvae.py): Caterini, Doucet & Sejdinovic 2018."""
import json
import math

import pytest
import torch
from torch.autograd.functional import jacobian
from torch.distributions import Independent, Normal

import vaekit
from vaekit.contract.bounds import elbo_terms, log_importance_weights
from vaekit.app.options import apply_options, base_config
from vaekit.errors import VaekitError
from vaekit.models import build_model
from vaekit.models.hvae import hamiltonian_flow, tempering_schedule

from conftest import run_cli, small_model


@pytest.fixture(scope="module")
def batch():
    d = vaekit.load_data("digits")
    return d.train.x[:8], d.train.y[:8]


def hvae(**args):
    """A small hvae (MLP 32, latent 4, like conftest's small_model) with structure args ``args``, seeded."""
    sets = [f"model.structure.args.{k}={str(v).lower()}" for k, v in args.items()]
    cfg = apply_options(base_config(), {"model": "hvae", "hidden": [32], "latent_dim": 4}, sets=sets)
    cfg.model.data_shape, cfg.model.num_classes = [1, 8, 8], 10
    torch.manual_seed(0)
    return build_model(cfg.model)


def banana_grad(z):
    """dU/dz of U(z) = z1^4/4 + (z2 - z1^2)^2 / 2 + 0.3 z1 z2: not quadratic, so leapfrog is not linear."""
    z = z.detach().requires_grad_(True)
    u = z[..., 0] ** 4 / 4 + (z[..., 1] - z[..., 0] ** 2) ** 2 / 2 + 0.3 * z[..., 0] * z[..., 1]
    return torch.autograd.grad(u.sum(), z, create_graph=True)[0]


def _flow_map(eps, sqrt_betas):
    """(z0, rho0) in R^4 -> (zK, rhoK) in R^4, for autograd's Jacobian."""
    def f(v):
        zk, rk, _ = hamiltonian_flow(v[:2][None], v[2:][None], banana_grad, eps, sqrt_betas)
        return torch.cat([zk[0], rk[0]])
    return f


START = torch.tensor([0.4, -0.7, 1.1, 0.5], dtype=torch.float64)
EPS = torch.tensor([0.15, 0.25], dtype=torch.float64)


def test_leapfrog_is_reversible_and_volume_preserving():
    ones = [torch.tensor(1.0, dtype=torch.float64)] * 6               # untempered, K = 5
    z0, r0 = START[:2][None], START[2:][None]
    zk, rk, log_det = hamiltonian_flow(z0, r0, banana_grad, EPS, ones)
    assert (zk - z0).abs().max() > 0.1                                # it moved
    zb, rb, _ = hamiltonian_flow(zk.detach(), -rk.detach(), banana_grad, EPS, ones)
    torch.testing.assert_close(zb, z0, atol=1e-5, rtol=0)
    torch.testing.assert_close(-rb, r0, atol=1e-5, rtol=0)
    sign, logabs = torch.linalg.slogdet(jacobian(_flow_map(EPS, ones), START))
    assert float(sign) == 1 and abs(float(logabs)) < 1e-10 and float(log_det) == 0


def test_tempering_log_det_matches_autograd():
    beta0, k = 0.3, 3
    sqrt_betas = tempering_schedule(torch.tensor(math.sqrt(beta0), dtype=torch.float64), k)
    # the quadratic schedule by hand: 1/sqrt(beta_k) = (1 - 1/sqrt(beta_0)) k^2/K^2 + 1/sqrt(beta_0)
    inv0 = 1 / math.sqrt(beta0)
    for i, s in enumerate(sqrt_betas):
        assert float(s) == pytest.approx(1 / ((1 - inv0) * i * i / k ** 2 + inv0), rel=1e-12)
    assert float(sqrt_betas[-1]) == pytest.approx(1.0, abs=1e-12)
    _, _, log_det = hamiltonian_flow(START[:2][None], START[2:][None], banana_grad, EPS, sqrt_betas)
    sign, logabs = torch.linalg.slogdet(jacobian(_flow_map(EPS, sqrt_betas), START))
    assert float(sign) == 1
    assert float(log_det) == pytest.approx(float(logabs), abs=1e-9)
    assert float(log_det) == pytest.approx(2 / 2 * math.log(beta0), abs=1e-9)   # (D/2) log(beta_0 / beta_K)


def test_n_lf_zero_is_the_vae_bound(batch):
    x, _ = batch
    vae, model = small_model("vae"), hvae(n_lf=0)
    keys = model.load_state_dict(vae.state_dict(), strict=False)
    assert sorted(keys.missing_keys) == ["beta_logit", "log_eps"] and not keys.unexpected_keys
    torch.manual_seed(3)
    a = elbo_terms(vae(x), x, analytic_kl=False)
    torch.manual_seed(3)
    b = elbo_terms(model(x), x, analytic_kl=False)
    torch.testing.assert_close(b.elbo, a.elbo, rtol=0, atol=1e-6)
    torch.testing.assert_close(b.kl, a.kl, rtol=0, atol=1e-6)
    with torch.no_grad():
        torch.manual_seed(4)
        wa = log_importance_weights(vae, x, k=3)
        torch.manual_seed(4)
        wb = log_importance_weights(model, x, k=3)
    torch.testing.assert_close(wb, wa, rtol=0, atol=1e-5)


def test_bound_by_hand(batch):
    """elbo_terms(..., analytic_kl=False) == log p(x, z_K) + log N(rho_K; 0, I) - log q_0(z_0) - log N(gamma_0; 0, I),
    the authors' form (hvae-nips get_nll: the beta_0 terms of rho_0's density and of the log-det cancel)."""
    x, _ = batch
    model = hvae(n_lf=3, eps_lf=0.2, beta_zero=0.5).double()
    x = x.double()
    torch.manual_seed(5)
    t = elbo_terms(model(x), x, analytic_kl=False)
    torch.manual_seed(5)
    q0 = model.encode(x)
    z = q0.rsample()
    log_q0 = q0.log_prob(z)
    gamma = torch.randn_like(z)
    std = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1)
    eps, s0 = model.log_eps.exp(), math.sqrt(0.5)
    inv = [((1 - 1 / s0) * (k / 3) ** 2 + 1 / s0) for k in range(4)]  # 1 / sqrt(beta_k)

    def grad_u(v):
        v = v.requires_grad_(True) if not v.requires_grad else v
        lp = model.decode(v).log_prob(x) + std.log_prob(v)
        return -torch.autograd.grad(lp.sum(), v, create_graph=True)[0]
    rho = gamma * inv[0]
    for k in range(1, 4):
        rho = rho - eps / 2 * grad_u(z)
        z = z + eps * rho
        rho = (inv[k] / inv[k - 1]) * (rho - eps / 2 * grad_u(z))
    want = model.decode(z).log_prob(x) + std.log_prob(z) + std.log_prob(rho) - log_q0 - std.log_prob(gamma)
    torch.testing.assert_close(t.elbo, want, rtol=1e-9, atol=1e-9)


def test_gradients_reach_eps_and_beta0_through_the_dynamics(batch):
    x, _ = batch
    model = hvae(n_lf=2, eps_lf=0.1, beta_zero=0.5).double()
    x = x.double()

    def loss():
        torch.manual_seed(6)
        return -elbo_terms(model(x), x).elbo.mean()
    loss().backward()
    for p in (model.log_eps, model.beta_logit):
        assert p.grad is not None and torch.isfinite(p.grad).all() and (p.grad != 0).any()
    # a central difference: d(loss)/d log_eps[0] needs the graph through dU/dz (create_graph)
    h = 1e-5
    with torch.no_grad():
        model.log_eps[0] += h
        up = float(loss())
        model.log_eps[0] -= 2 * h
        down = float(loss())
        model.log_eps[0] += h
    assert float(model.log_eps.grad[0]) == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-7)


def test_no_grad_evaluation_and_latent_map(batch):
    x, _ = batch
    model = hvae(eps_lf=0.1)
    torch.manual_seed(7)
    with_grad = elbo_terms(model(x), x).elbo
    with torch.no_grad():
        torch.manual_seed(7)
        out = model(x)
        without = elbo_terms(out, x).elbo
        log_w = log_importance_weights(model, x, k=4)
    assert not without.requires_grad and not out.latents[0].z.requires_grad
    torch.testing.assert_close(without, with_grad.detach(), rtol=1e-5, atol=1e-5)
    assert log_w.shape == (4, x.shape[0]) and torch.isfinite(log_w).all()
    assert model.forward_many(x, None, 3) is None       # the shortcut would skip the dynamics
    q = model.encode(x)                                 # the Gaussian q_0(z_0|x): no dynamics
    assert isinstance(q, Independent) and isinstance(q.base_dist, Normal)
    torch.testing.assert_close(model.embed(x), q.mean)
    with torch.inference_mode(), pytest.raises(VaekitError, match="no_grad"):
        model(x)


@pytest.mark.parametrize("args, word", [({"n_lf": -1}, "n_lf"), ({"eps_lf": 0}, "eps_lf"),
                                        ({"beta_zero": 1.5}, "beta_zero"), ({"beta_zero": 1}, "learn_beta_zero")])
def test_bad_args_are_refused(args, word):
    with pytest.raises(VaekitError, match=word):
        hvae(**args)
    fixed = hvae(beta_zero=1, learn_beta_zero=False)      # untempered: beta_0 = 1, no parameter
    assert float(fixed.sqrt_beta0) == 1 and "beta_logit" not in dict(fixed.named_parameters())


def test_importance_sampled_bound_is_above_the_elbo(zoo_run, capsys):
    """test_contract.py trains and evaluates hvae; here its k = 10 log p(x) bound beats the ELBO."""
    run = zoo_run("hvae")
    code, out, err = run_cli(["evaluate", run, "--metrics", "elbo,nll", "--k", "10", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert math.isfinite(result["elbo"]) and math.isfinite(result["log_likelihood"]), result
    assert result["log_likelihood"] > result["elbo"]   # the k = 10 bound is the tighter one on average
