"""Normalizing-flow posteriors (vaekit/distributions/flows.py): log-determinants against autograd,
invertibility constraints, the samples' log-density record, and each flow variant end to end."""
import math

import pytest
import torch

import vaekit
from vaekit.distributions.flows import (AutoregressiveStep, IAFPosterior, PlanarPosterior,
                                        RadialPosterior, planar_step, planar_u_hat, radial_parameters,
                                        radial_step)
from vaekit.errors import VaekitError

D = 3


def autograd_log_det(f, z):
    """log|det df/dz| of a map of one point (D,) -> (D,), by autograd's Jacobian."""
    jac = torch.autograd.functional.jacobian(f, z)
    return torch.linalg.slogdet(jac)[1], jac


def test_planar_log_det_matches_autograd():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        u, w = torch.randn(1, D, generator=g, dtype=torch.float64), torch.randn(1, D, generator=g, dtype=torch.float64)
        b = torch.randn(1, generator=g, dtype=torch.float64)
        u = planar_u_hat(u, w)
        z = torch.randn(D, generator=g, dtype=torch.float64) * 2
        expected, _ = autograd_log_det(lambda v: planar_step(v[None], u, w, b)[0][0], z)
        assert torch.allclose(planar_step(z[None], u, w, b)[1][0], expected, atol=1e-8)


def test_planar_u_hat_keeps_the_flow_invertible():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(1000, D, generator=g, dtype=torch.float64) * 5
    w = torch.randn(1000, D, generator=g, dtype=torch.float64) * 5
    assert ((planar_u_hat(u, w) * w).sum(-1) >= -1 - 1e-9).all()
    assert ((u * w).sum(-1) < -1).any()  # the raw parameters would not have been


def test_radial_log_det_matches_autograd():
    g = torch.Generator().manual_seed(2)
    for _ in range(5):
        centre = torch.randn(1, D, generator=g, dtype=torch.float64)
        alpha, beta = radial_parameters(torch.randn(1, generator=g, dtype=torch.float64),
                                        torch.randn(1, generator=g, dtype=torch.float64))
        z = torch.randn(D, generator=g, dtype=torch.float64)
        expected, _ = autograd_log_det(lambda v: radial_step(v[None], centre, alpha, beta)[0][0], z)
        assert torch.allclose(radial_step(z[None], centre, alpha, beta)[1][0], expected, atol=1e-8)


def test_radial_parameters_keep_the_flow_invertible():
    g = torch.Generator().manual_seed(6)
    alpha, beta = radial_parameters(torch.randn(1000, generator=g) * 5, torch.randn(1000, generator=g) * 5)
    assert (alpha > 0).all() and (beta >= -alpha).all()
    # beta >= -alpha makes f(z) = z + beta (z - z0) / (alpha + r) radially monotone: r' = r (1 + beta / (alpha + r))
    r = torch.linspace(0, 10, 200)[:, None]
    assert ((r * (1 + beta / (alpha + r))).diff(dim=0) >= -1e-5).all()


def test_iaf_step_is_autoregressive_and_log_det_is_sum_log_sigma():
    torch.manual_seed(3)
    step = AutoregressiveStep(4, 16, 5).double()
    with torch.no_grad():
        for p in step.parameters():
            p.normal_()
    ctx = torch.randn(1, 5, dtype=torch.float64)
    z = torch.randn(4, dtype=torch.float64)
    expected, jac = autograd_log_det(lambda v: step(v[None], ctx)[0][0], z)
    assert torch.allclose(jac, torch.tril(jac))                       # dz'_i/dz_j = 0 for j > i
    assert torch.allclose(step(z[None], ctx)[1][0], expected, atol=1e-8)


@pytest.mark.parametrize("cls", [PlanarPosterior, RadialPosterior, IAFPosterior])
def test_whole_flow_log_prob_matches_change_of_variables(cls):
    """log q_K(z_K) = log q_0(z_0) - log|det dz_K/dz_0|, the Jacobian taken by autograd through all steps."""
    torch.manual_seed(4)
    head = cls(6, D, flows=3, **({"hidden": 8} if cls is IAFPosterior else {})).double()
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0, 0.3)
    q = head(torch.randn(1, 6, dtype=torch.float64))
    z0 = q.base.sample()
    zk, log_det = q.flow(z0)
    expected, _ = autograd_log_det(lambda v: q.flow(v[None])[0][0], z0[0])
    assert torch.allclose(log_det[0], expected, atol=1e-7)
    z = q.rsample((2,))
    assert q.log_prob(z).shape == (2, 1) and q.expand((2, 1)).log_prob(z).shape == (2, 1)


def test_log_prob_of_a_foreign_point_is_a_clear_error():
    q = PlanarPosterior(4, D)(torch.randn(2, 4))
    q.rsample()
    with pytest.raises(VaekitError, match="only at the samples it drew"):
        q.log_prob(torch.zeros(2, D))


def test_planar_density_integrates_to_one():
    """In 1-D (where q_K can be evaluated on a grid through its samples): a histogram-free check,
    E_q[1 / q(z)] over a bounded region equals that region's length only if q is a density."""
    torch.manual_seed(5)
    q = PlanarPosterior(2, 1, flows=2)(torch.randn(1, 2))
    z = q.sample((200000,))
    log_q = q.log_prob(z)[:, 0]
    inside = (z[:, 0, 0].abs() < 1.0)
    # importance estimate of the length of [-1, 1]: E_q[1{|z| < 1} / q(z)]
    length = (inside.double() * torch.exp(-log_q.double())).mean()
    assert abs(float(length) - 2.0) < 0.1


@pytest.mark.parametrize("variant", ["planar-vae", "radial-vae", "iaf-vae"])
def test_flow_variant_trains_and_bounds_log_likelihood(tmp_path, variant):
    from vaekit.contract.bounds import elbo_terms
    from vaekit.evaluate.likelihood import evaluate_log_likelihood
    torch.manual_seed(0)
    model = vaekit.train("digits", model=variant, epochs=1, out=tmp_path / "r", progress=False, latent_dim=4)
    data = vaekit.load_data("digits").test
    subset = type(data)(data.x[:200], None if data.y is None else data.y[:200]) if hasattr(data, "x") else data
    ll = evaluate_log_likelihood(model, subset, k=10)["log_likelihood"]
    model.eval()
    with torch.no_grad():
        elbo = float(elbo_terms(model(subset.x.to(model.device)), subset.x.to(model.device)).elbo.mean())
        z = model.embed(subset.x[:5].to(model.device))
    assert math.isfinite(ll) and ll >= elbo - 2.0
    assert z.shape == (5, 4) and torch.isfinite(z).all()
