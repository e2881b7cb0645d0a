"""Zoo objectives (MIWAE, CIWAE, PIWAE, beta-TC, DIP-VAE, capacity), each against a known answer,
plus one epoch of training and evaluation per variant."""
import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

import vaekit
from vaekit.data import load_data
from vaekit.errors import VaekitError
from vaekit.evaluate import evaluate_elbo
from vaekit.models import elbo_terms
from vaekit.objectives.capacity import Capacity
from vaekit.objectives.ciwae import CIWAE
from vaekit.objectives.dip import DIPVAE, dip_covariance, dip_penalty
from vaekit.objectives.iwae import IWAE
from vaekit.objectives.miwae import MIWAE
from vaekit.models.piwae import PIWAE
from vaekit.objectives.tc import BetaTC, tc_decomposition

from conftest import small_model as small  # noqa: E402

DIGITS = load_data("digits")
X = DIGITS.train.x[:32]


def seeded(objective, model, x=X, seed=5, **kw):
    torch.manual_seed(seed)
    with torch.no_grad():
        return objective(model, x, **kw)


# -- the importance-weighted family (Rainforth et al. 2018) ------------------------------------------
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


# -- end to end -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,sets", [
    ("miwae", ["train.objective.args.m=2", "train.objective.args.k=2"]),
    ("ciwae", ["train.objective.args.k=4"]),
    ("piwae", ["train.objective.args.m=2", "train.objective.args.k=2"]),
    ("beta-tc", []), ("dip-vae-i", []), ("dip-vae-ii", []), ("capacity", []),
])
def test_variant_trains_one_epoch_and_evaluates(name, sets, tmp_path):
    model = vaekit.train("digits", model=name, epochs=1, out=tmp_path / name, progress=False, hidden=[32],
                         latent_dim=4, batch_size=256, sets=sets)
    assert model.config.model.variant == name
    result = evaluate_elbo(vaekit.load(tmp_path / name), DIGITS.test)
    assert math.isfinite(float(result["elbo"]))
