"""Known answers for the image likelihoods: normalisation, closed forms, shapes, refusals."""
import math

import numpy as np
import pytest
import torch
from torch.distributions import ContinuousBernoulli, Laplace

import vaekit  # noqa: F401  (registers the parts)
from vaekit.distributions.image_likelihoods import ContinuousBernoulliValues, cb_log_norm
from vaekit.errors import VaekitError
from vaekit.registry import LIKELIHOODS

SHAPE = (1, 2, 3)  # (C, H, W) of one example
LEVELS = torch.arange(256, dtype=torch.float64) / 255


def build(name, **args):
    return LIKELIHOODS.build(name, args, SHAPE, where="the test")


def closed_form_log_norm(lam: float) -> float:
    """log C(lambda) = log(2 atanh(1 - 2 lambda) / (1 - 2 lambda)), in float64 via math."""
    if lam == 0.5:
        return math.log(2.0)
    return math.log(2 * math.atanh(1 - 2 * lam) / (1 - 2 * lam))


# -- continuous Bernoulli -------------------------------------------------------------------
LAMBDAS = [0.01, 0.2, 0.5 - 1e-4, 0.5, 0.5 + 1e-4, 0.7, 0.999]


@pytest.mark.parametrize("lam", LAMBDAS)
def test_continuous_bernoulli_integrates_to_one(lam):
    logit = torch.tensor([math.log(lam / (1 - lam))], dtype=torch.float64)
    n = 200_000  # midpoint rule on [0, 1]
    x = ((torch.arange(n, dtype=torch.float64) + 0.5) / n).unsqueeze(1)
    density = ContinuousBernoulliValues(logit).log_prob(x).exp()
    assert float(density.mean()) == pytest.approx(1.0, abs=1e-6)
    assert float(cb_log_norm(logit)) == pytest.approx(closed_form_log_norm(lam), abs=1e-7)


def test_continuous_bernoulli_stable_near_one_half():
    """float32 logits around 0 (lambda = 1/2 +- 1e-4 and closer): finite, smooth, with finite gradients."""
    logits = torch.tensor([-1e-3, -4e-4, -1e-6, 0.0, 1e-6, 4e-4, 1e-3, 0.0199, 0.0201], requires_grad=True)
    log_c = cb_log_norm(logits)
    expected = torch.tensor([closed_form_log_norm(1 / (1 + math.exp(-l))) if abs(l) > 1e-5 else math.log(2.0)
                             for l in logits.tolist()])
    torch.testing.assert_close(log_c.double(), expected.double(), atol=1e-6, rtol=0)
    log_c.sum().backward()
    assert torch.isfinite(logits.grad).all()
    torch.testing.assert_close(logits.grad, (logits / 6).detach(), atol=1e-4, rtol=0)  # d/dl (l^2 / 12)


def test_continuous_bernoulli_matches_torch_and_mean():
    torch.manual_seed(0)
    logits = torch.randn(4, *SHAPE) * 3
    x = torch.rand(4, *SHAPE)
    px = build("continuous-bernoulli")(logits)
    ref = ContinuousBernoulli(logits=logits.double()).log_prob(x.double()).flatten(1).sum(1)
    torch.testing.assert_close(px.log_prob(x).double(), ref, atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(px.mean.double(), ContinuousBernoulli(logits=logits.double()).mean, atol=1e-4, rtol=0)
    samples = px.sample((20000,))
    assert samples.shape == (20000, 4, *SHAPE) and samples.min() >= 0 and samples.max() <= 1
    torch.testing.assert_close(samples.mean(0), px.mean, atol=0.02, rtol=0)


# -- Laplace --------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", ["learned", "learned-per-value", 0.1])
def test_laplace_matches_torch(scale):
    torch.manual_seed(0)
    lik = build("laplace", scale=scale)
    mu, x = torch.randn(3, *SHAPE), torch.randn(3, *SHAPE)
    b = lik.scale().expand_as(mu)
    if scale == 0.1:
        torch.testing.assert_close(b, torch.full_like(mu, 0.1))
    px = lik(mu)
    torch.testing.assert_close(px.log_prob(x), Laplace(mu, b).log_prob(x).flatten(1).sum(1))
    assert px.mean.shape == (3, *SHAPE) and px.sample().shape == (3, *SHAPE)
    assert len(list(lik.parameters())) == (0 if scale == 0.1 else 1)


def test_laplace_refuses_bad_scales_and_data():
    for bad in (-1, 0, "big"):
        with pytest.raises(VaekitError, match="laplace scale"):
            build("laplace", scale=bad)
    with pytest.raises(VaekitError, match="NaN or infinite"):
        build("laplace").check_data(torch.tensor([[float("nan")]]), "the data")


# -- 8-bit probability masses ---------------------------------------------------------------
def all_levels(n_values=256):
    """(256, *SHAPE) with every value of example k equal to k / 255."""
    return LEVELS.float().view(-1, 1, 1, 1).expand(n_values, *SHAPE).contiguous()


def per_value_log_probs(px, params_batch: int, levels: int = 256):
    """log p(k / (L-1)) per value, for every k: (L, B, *SHAPE), via the per-value base distribution."""
    base = px.base_dist
    rows = []
    for k in range(levels):
        x = torch.full((params_batch, *SHAPE), k / (levels - 1))
        rows.append(base.log_prob(x))
    return torch.stack(rows)


def grid(levels: int, dtype=torch.float32):
    return (torch.arange(levels, dtype=torch.float64) / (levels - 1)).to(dtype)


@pytest.mark.parametrize("levels", [256, 17])
def test_categorical_mass_one_mean_sample(levels):
    torch.manual_seed(0)
    lik = build("categorical256", levels=levels)
    assert lik.params_per_value == levels and lik.levels == levels
    params = torch.randn(2, levels * SHAPE[0], *SHAPE[1:]) * 4
    px = lik(params)
    log_p = per_value_log_probs(px, 2, levels)
    torch.testing.assert_close(log_p.exp().sum(0), torch.ones(2, *SHAPE))
    expected_mean = (log_p.exp() * grid(levels).view(-1, 1, 1, 1, 1)).sum(0)
    torch.testing.assert_close(px.mean, expected_mean)
    x = px.sample()
    top = levels - 1
    assert x.shape == (2, *SHAPE) and torch.equal(x, torch.round(x * top) / top)
    assert px.log_prob(x).shape == (2,)
    assert px.sample((5,)).shape == (5, 2, *SHAPE)


@pytest.mark.parametrize("components", [1, 5])
@pytest.mark.parametrize("spread", [0.05, 3.0])
@pytest.mark.parametrize("levels", [256, 17])
def test_dlogistic_mass_one_on_its_bins(components, spread, levels):
    """Total mass 1 over the L bins (256 or the digits' 17), edges included (means beyond [-1, 1],
    tiny and big scales)."""
    torch.manual_seed(components)
    lik = build("dlogistic", components=components, levels=levels)
    assert lik.params_per_value == 3 * components and lik.levels == levels
    p = torch.randn(2, 3 * components, *SHAPE)
    p[:, components:2 * components] *= 1.5                                    # means, some outside [-1, 1]
    p[:, 2 * components:] = p[:, 2 * components:] * spread - 4 * (spread < 1)  # log-scales
    px = lik(p.view(2, 3 * components * SHAPE[0], *SHAPE[1:]))
    log_p = per_value_log_probs(px, 2, levels)
    assert torch.isfinite(log_p).all()
    torch.testing.assert_close(log_p.exp().sum(0), torch.ones(2, *SHAPE), atol=1e-5, rtol=0)
    expected_mean = (log_p.exp().double() * grid(levels, torch.float64).view(-1, 1, 1, 1, 1)).sum(0)
    torch.testing.assert_close(px.mean.double(), expected_mean, atol=1e-5, rtol=0)


def test_dlogistic_samples_follow_the_mass():
    torch.manual_seed(1)
    lik = build("dlogistic", components=2)
    px = lik(torch.randn(1, 6 * SHAPE[0], *SHAPE[1:]))
    x = px.sample((40000,))                                                   # (N, 1, *SHAPE)
    assert x.shape == (40000, 1, *SHAPE) and torch.equal(x, torch.round(x * 255) / 255)
    assert px.sample().shape == (1, *SHAPE) and px.log_prob(x[0]).shape == (1,)
    torch.testing.assert_close(x.mean(0), px.mean, atol=0.01, rtol=0)
    # the edge bins: P(x = 0) and P(x = 1) from samples vs log_prob
    base = px.base_dist
    for value in (0.0, 1.0):
        prob = base.log_prob(torch.full((1, *SHAPE), value)).exp()
        torch.testing.assert_close((x == value).float().mean(0), prob, atol=0.01, rtol=0)


@pytest.mark.parametrize("name", ["categorical256", "dlogistic"])
def test_8bit_likelihoods_refuse_other_data(name):
    lik = build(name)
    lik.check_data(all_levels(), "8-bit data")                                  # accepted
    lik.check_data(torch.tensor([0.0, 1.0]), "binary data")
    with pytest.raises(VaekitError, match=r"not on the .* grid.*levels out.*continuous-bernoulli"):
        lik.check_data(torch.arange(17) / 16, "the digits")                     # 17 levels
    build(name, levels=17).check_data(torch.arange(17) / 16, "the digits")     # on its own grid
    with pytest.raises(VaekitError, match="levels must be an integer of at least 2"):
        build(name, levels=1)
    with pytest.raises(VaekitError, match=r"values in \[-1, 1\].*gaussian"):
        lik.check_data(torch.tensor([-1.0, 1.0]), "standardized data")
    with pytest.raises(VaekitError, match="NaN"):
        lik.check_data(torch.tensor([float("nan")]), "broken data")


def test_continuous_bernoulli_refuses_data_outside_unit_interval():
    lik = build("continuous-bernoulli")
    lik.check_data(torch.rand(5), "grey data")
    with pytest.raises(VaekitError, match=r"\[0, 1\].*gaussian"):
        lik.check_data(torch.tensor([-0.5, 2.0]), "the table")


def test_dlogistic_components_checked():
    for bad in (0, -2, 2.5, True):
        with pytest.raises(VaekitError, match="components"):
            LIKELIHOODS.get("dlogistic")(SHAPE, components=bad)


def test_8bit_npy_round_trip(tmp_path):
    """uint8 (N, 8, 8) arrays load onto the 1/255 grid the 8-bit likelihoods accept."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8))
    data = vaekit.load_data(str(tmp_path / "x.npy"))
    build("categorical256").check_data(data.train.x, "the 8-bit data")


@pytest.mark.parametrize("variant", ["dlogistic-vae", "categorical-vae"])
def test_levels_follow_the_training_data(variant, tmp_path):
    """Left out of the config, levels come from the data (digits: 17) and are saved with the run;
    given explicitly, they are checked against the data."""
    model = vaekit.train("digits", model=variant, epochs=1, out=tmp_path / "run", progress=False, hidden=[16],
                         latent_dim=2, batch_size=512)
    assert model.likelihood.levels == 17 and vaekit.open_run(tmp_path / "run").config.model.likelihood.args["levels"] == 17
    assert vaekit.load(tmp_path / "run").likelihood.levels == 17
    with pytest.raises(VaekitError, match="not on the .* grid"):
        vaekit.train("digits", model=variant, epochs=1, out=tmp_path / "bad", progress=False, hidden=[16],
                     latent_dim=2, sets=["model.likelihood.args.levels=256"])
