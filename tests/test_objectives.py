"""The objectives (vaekit/objectives: IWAE, MIWAE, CIWAE, PIWAE, beta-TC, DIP-VAE, capacity, MMD), each
against a known answer. Training and evaluating each variant is tests/test_contract.py's table."""
import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

import vaekit
from vaekit.data import load_data
from vaekit.errors import VaekitError
from vaekit.models import elbo_terms
from vaekit.objectives.capacity import Capacity
from vaekit.objectives.ciwae import CIWAE
from vaekit.objectives.dip import DIPVAE, dip_covariance, dip_penalty
from vaekit.objectives.iwae import IWAE
from vaekit.objectives.mmd import MMD, kernel_matrix, mmd
from vaekit.objectives.miwae import MIWAE
from vaekit.models.piwae import PIWAE
from vaekit.objectives.tc import BetaTC, tc_decomposition
from vaekit.train import build_objective

from conftest import small_model as small, small_parts  # noqa: E402

DIGITS = load_data("digits")
X = DIGITS.train.x[:32]


def seeded(objective, model, x=X, seed=5, **kw):
    torch.manual_seed(seed)
    with torch.no_grad():
        return objective(model, x, **kw)


# -- the importance-weighted family (Burda et al. 2016; Rainforth et al. 2018) ------------------------
def test_iwae_with_one_sample_is_the_single_sample_elbo():
    cfg, model = small_parts("iwae", sets=["train.objective.args.k=1"])
    objective = build_objective(cfg)
    x = DIGITS.train.x[:32]
    torch.manual_seed(5)
    loss = objective(model, x).loss
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(5)
    elbo = elbo_terms(model(x), x, analytic_kl=False).elbo.mean()
    (-elbo).backward()
    assert float(loss.detach()) == pytest.approx(-float(elbo.detach()), abs=1e-5)
    for g, p in zip(grads, model.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-5)
    # and its expectation is the closed-form ELBO: the two estimates agree over many samples
    with torch.no_grad():
        torch.manual_seed(1)
        mc = torch.stack([objective(model, x).loss for _ in range(400)]).mean()
        analytic = torch.stack([-elbo_terms(model(x), x).elbo.mean() for _ in range(400)]).mean()
    assert float(mc) == pytest.approx(float(analytic), abs=0.05)


def test_iwae_bound_is_tighter_than_the_elbo():
    cfg, model = small_parts("iwae", sets=["train.objective.args.k=20"])
    out = build_objective(cfg)(model, DIGITS.train.x[:64])
    assert float(out.terms["iwae"].detach()) > float(out.terms["elbo"].detach()) + 0.1


def test_iwae_runs_in_bounded_chunks_without_gradients(monkeypatch):
    import vaekit.objectives.iwae as iwae_module

    cfg, model = small_parts("iwae", sets=["train.objective.args.k=6"])
    objective = build_objective(cfg)
    sizes = []
    model.decoder.register_forward_pre_hook(lambda module, args: sizes.append(args[0].shape[0]))  # rows decoded
    monkeypatch.setattr(iwae_module, "MAX_ROWS", 8)
    x = DIGITS.train.x[:4]
    objective(model, x)                    # training: all 6 * 4 rows in one pass, for the gradient
    assert sizes == [24]
    sizes.clear()
    with torch.no_grad():
        out = objective(model, x)          # validation: at most 8 rows at a time
    assert sizes == [8, 8, 8] and torch.isfinite(out.terms["iwae"])


def test_miwae_with_one_group_is_iwae_and_averages_groups():
    model = small()
    one, iwae = seeded(MIWAE(m=1, k=6), model), seeded(IWAE(k=6), model)
    assert float(one.loss) == pytest.approx(float(iwae.loss), abs=1e-5)
    assert float(one.terms["miwae"]) == pytest.approx(float(iwae.terms["iwae"]), abs=1e-5)
    # M groups of K: the mean of the groups' IWAE_K bounds, by hand from the same draws
    torch.manual_seed(5)
    with torch.no_grad():
        log_w = vaekit.models.log_importance_weights(model, X, None, 12).view(3, 4, -1)    # (M, K, B)
    by_hand = (torch.logsumexp(log_w, 1) - math.log(4)).mean(0).mean()
    assert float(seeded(MIWAE(m=3, k=4), model).terms["miwae"]) == pytest.approx(float(by_hand), abs=1e-5)
    # with K = 1 it is the mean single-sample ELBO
    k1 = seeded(MIWAE(m=5, k=1), model)
    assert float(k1.terms["miwae"]) == pytest.approx(float(k1.terms["elbo"]), abs=1e-5)


def test_ciwae_with_beta_one_is_the_elbo_and_with_zero_iwae():
    model = small()
    elbo_like = seeded(CIWAE(k=1, beta=1.0), model)
    torch.manual_seed(5)
    with torch.no_grad():
        elbo = elbo_terms(model(X), X, analytic_kl=False).elbo.mean()     # the same draw
    assert float(elbo_like.loss) == pytest.approx(-float(elbo), abs=1e-5)
    k8 = seeded(CIWAE(k=8, beta=1.0), model)
    assert float(k8.terms["ciwae"]) == pytest.approx(float(k8.terms["elbo"]), abs=1e-5)
    assert float(seeded(CIWAE(k=8, beta=0.0), model).loss) == pytest.approx(float(seeded(IWAE(k=8), model).loss),
                                                                           abs=1e-5)
    mix = seeded(CIWAE(k=8, beta=0.3), model).terms
    assert float(mix["ciwae"]) == pytest.approx(0.3 * float(mix["elbo"]) + 0.7 * float(mix["iwae"]), abs=1e-5)


def test_piwae_gives_encoder_miwae_and_decoder_iwae_gradients():
    model = small("piwae")
    groups = model.parameter_groups()
    assert set(groups) == {"main", "decoder"}
    assert sum(map(len, groups.values())) == len(list(model.parameters()))
    out = seeded(PIWAE(m=2, k=3), model)
    assert float(out.losses["main"]) == pytest.approx(float(seeded(MIWAE(m=2, k=3), model).loss), abs=1e-5)
    assert float(out.losses["decoder"]) == pytest.approx(float(seeded(IWAE(k=6), model).loss), abs=1e-5)
    with pytest.raises(VaekitError, match="--model piwae"):
        PIWAE()(small(), X)


# -- beta-TC-VAE (Chen et al. 2018) ----------------------------------------------------------
def _codes(rho, b=2000, s2=0.25, seed=0):
    """q(z|x) = N(mu_x, s2 I) with mu ~ N(0, [[1, rho], [rho, 1]]): q(z) = N(0, S + s2 I) exactly."""
    torch.manual_seed(seed)
    cov = torch.tensor([[1.0, rho], [rho, 1.0]])
    mu = MultivariateNormal(torch.zeros(2), cov).sample((b,))
    q = Independent(Normal(mu, math.sqrt(s2) * torch.ones_like(mu)), 1)
    prior = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
    agg = cov + s2 * torch.eye(2)
    exact_tc = 0.5 * (torch.log(torch.diagonal(agg)).sum() - torch.logdet(agg))
    exact_mi = 0.5 * (torch.logdet(agg) - 2 * math.log(s2))
    return q, prior, q.sample(), float(exact_tc), float(exact_mi)


@pytest.mark.parametrize("sampling,n", [("mws", 0), ("mss", 0), ("mss", 100000)])
def test_tc_is_zero_for_a_factorized_aggregate_and_exact_for_correlated_codes(sampling, n):
    q, prior, z, exact_tc, exact_mi = _codes(0.0)
    d = {k: float(v.mean()) for k, v in tc_decomposition(q, prior, z, n, sampling).items()}
    assert exact_tc == 0.0 and abs(d["tc"]) < 0.02, d
    assert d["mi"] == pytest.approx(exact_mi, abs=0.1)
    q, prior, z, exact_tc, _ = _codes(0.8)
    d = {k: float(v.mean()) for k, v in tc_decomposition(q, prior, z, n, sampling).items()}
    assert exact_tc == pytest.approx(0.2635, abs=1e-3)
    assert d["tc"] == pytest.approx(exact_tc, abs=0.03), d
    # MI + TC + dimension-wise KL is log q(z|x) - log p(z) at the sample, whatever the estimates
    total = sum(tc_decomposition(q, prior, z, n, sampling).values())
    assert torch.allclose(total, q.log_prob(z) - prior.log_prob(z), atol=1e-4)


def test_mws_with_a_data_set_size_is_the_papers_estimator():
    """Chen et al.'s MWS subtracts log(N M): TC's value moves by (D - 1) log N, its gradient does not."""
    q, prior, z, _, _ = _codes(0.8, b=256)
    batch = float(tc_decomposition(q, prior, z, 0, "mws")["tc"].mean())
    paper = float(tc_decomposition(q, prior, z, 1000, "mws")["tc"].mean())
    assert paper - batch == pytest.approx(math.log(1000) + math.log(256) - math.log(256), abs=1e-3)


def test_beta_tc_objective_weights_its_terms():
    model = small()
    base = seeded(BetaTC(alpha=1.0, beta=1.0, gamma=1.0), model)
    t = base.terms
    # alpha = beta = gamma = 1: the loss is recon + the sampled KL
    assert float(base.loss) == pytest.approx(float(t["recon"] + t["mi"] + t["tc"] + t["dwkl"]), abs=1e-4)
    heavy = seeded(BetaTC(alpha=1.0, beta=6.0, gamma=1.0), model)
    assert float(heavy.loss - base.loss) == pytest.approx(5 * float(t["tc"]), abs=1e-4)
    assert float(t["elbo"]) == pytest.approx(float(-(t["recon"] + t["kl"])), abs=1e-4)
    with pytest.raises(VaekitError, match="sampling"):
        BetaTC(sampling="nope")


# -- DIP-VAE (Kumar et al. 2018) -------------------------------------------------------------
def test_dip_penalty_is_zero_at_identity_and_matches_a_hand_computation():
    assert float(dip_penalty(torch.eye(3), 10.0, 100.0)) == 0.0
    cov = torch.tensor([[2.0, 0.5], [0.5, 0.8]])
    # off-diagonal: 2 * 0.5^2 = 0.5; diagonal: (2 - 1)^2 + (0.8 - 1)^2 = 1.04
    assert float(dip_penalty(cov, 10.0, 3.0)) == pytest.approx(10 * 0.5 + 3 * 1.04, abs=1e-6)


def test_dip_covariances_of_type_i_and_ii():
    mu = torch.tensor([[1.0, 0.0], [-1.0, 2.0], [0.0, 1.0]])
    std = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    q = Independent(Normal(mu, std), 1)
    # Cov[mu] by hand: means (0, 1); centred rows (1,-1), (-1,1), (0,0) -> [[2/3, -2/3], [-2/3, 2/3]]
    cov_i = torch.tensor([[2 / 3, -2 / 3], [-2 / 3, 2 / 3]])
    assert torch.allclose(dip_covariance(q, "i"), cov_i, atol=1e-6)
    assert torch.allclose(dip_covariance(q, "ii"), cov_i + torch.diag(torch.tensor([1.0, 4.0])), atol=1e-6)
    assert DIPVAE("i", lambda_od=2.0).lambda_d == 20.0 and DIPVAE("ii", lambda_od=2.0).lambda_d == 2.0
    model = small()
    out = seeded(DIPVAE("ii", 10.0), model)
    assert float(out.loss) == pytest.approx(float(out.terms["recon"] + out.terms["kl"] + out.terms["dip"]), abs=1e-4)


# -- capacity annealing (Burgess et al. 2018) --------------------------------------------------
def test_capacity_pulls_the_kl_to_the_annealed_target():
    model = small()
    objective = Capacity(gamma=100.0, c_max=20.0)
    for w in (0.0, 0.25, 1.0):
        out = seeded(objective, model, kl_weight=w)
        t = out.terms
        assert float(t["capacity"]) == pytest.approx(20.0 * w)
        assert float(out.loss) == pytest.approx(float(t["recon"] + 100.0 * (t["kl"] - 20.0 * w).abs()), rel=1e-5)
        assert float(t["elbo"]) == pytest.approx(float(-(t["recon"] + t["kl"])), abs=1e-4)


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


def test_collapse_advice_fits_the_objective():
    """The ELBO's remedies (warm-up, free bits, beta) for an ELBO model; the objective's own options otherwise."""
    from vaekit.app.options import apply_options, base_config
    from vaekit.evaluate.decomposition import collapse_advice

    advice = {}
    for variant in ("vae", "wae-mmd"):
        advice[variant] = collapse_advice(apply_options(base_config(), {"model": variant}).train.objective.name)
    assert "--free-bits" in advice["vae"] and "--beta" in advice["vae"]
    assert "mmd objective" in advice["wae-mmd"] and "--beta" not in advice["wae-mmd"]
