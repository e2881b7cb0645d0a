"""Numbers you can trust: the audit's findings, each with a test that fails on the wrong maths.

Most checks use models whose answer is known in closed form: a posterior equal to the prior
(so log p(z) - log q(z) = 0 exactly) and a decoder that ignores z, or a linear-Gaussian model
(probabilistic PCA) whose log p(x) is a multivariate normal density.
"""
import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Independent, MixtureSameFamily, Categorical, MultivariateNormal, Normal

import vaekit
from vaekit.config import ModelConfig, Part
from vaekit.contract.bounds import elbo_terms, importance_weight_parts
from vaekit.contract.output import Latent, ModelOutput
from vaekit.data.arrays import quantization_levels, to_images
from vaekit.data.types import DataInfo, TensorData
from vaekit.distributions.kl import kl_term
from vaekit.evaluate import evaluate_elbo, evaluate_log_likelihood, log_likelihood
from vaekit.evaluate.decomposition import active_units, decomposition
from vaekit.evaluate.likelihood import standard_error
from vaekit.evaluate.recon import reconstruction_error
from vaekit.models import build_model
from vaekit.objectives.base import LossOutput, Objective
from vaekit.objectives.elbo import ELBO
from vaekit.registry import OBJECTIVES


# -- models with known answers -------------------------------------------------------------
class Zeros(torch.nn.Module):
    """An encoder that ignores x: with a zeroed head, q(z|x) = N(0, I) = p(z)."""
    out_dim = 1

    def forward(self, x, c=None):
        return torch.zeros(x.shape[0], 1, device=x.device)


class Constant(torch.nn.Module):
    """A decoder that ignores z: mean ``value`` (+ ``scale`` * the one-hot condition)."""

    def __init__(self, value, scale=0.0):
        super().__init__()
        self.value = torch.nn.Parameter(torch.as_tensor(value, dtype=torch.float32))
        self.scale = scale
        self.calls = []

    def forward(self, z, c=None):
        self.calls.append(z.shape[0])
        out = self.value.expand(z.shape[0], *self.value.shape)
        return out + self.scale * c if c is not None else out


def prior_posterior_model(value, likelihood, conditional=False, num_classes=None, latent_dim=2, scale=0.0):
    value = torch.as_tensor(value, dtype=torch.float32)
    cfg = ModelConfig(likelihood=likelihood, latent_dim=latent_dim, data_shape=list(value.shape),
                      conditional=conditional, num_classes=num_classes)
    model = build_model(cfg, encoder=Zeros(), decoder=Constant(value, scale))
    with torch.no_grad():
        model.posterior.head.weight.zero_()
        model.posterior.head.bias.zero_()
    return model.eval()


# -- data and defaults ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int32, bool])
def test_binary_images_stay_binary_whatever_the_integer_type(dtype):
    arr = (np.arange(2 * 4 * 4).reshape(2, 1, 4, 4) % 2).astype(dtype)
    x = to_images(arr, "test")
    assert set(np.unique(x).tolist()) == {0.0, 1.0}  # not {0, 1/255}
    assert quantization_levels(x) == 2


def test_quantization_levels_of_8_bit_and_real_images():
    grey = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    assert quantization_levels(to_images(grey, "grey")) == 256
    assert quantization_levels(np.random.default_rng(0).random((2, 1, 4, 4)).astype(np.float32)) is None
    assert vaekit.load_data("digits").info.extra["levels"] == 17


def test_default_gaussian_sigma_follows_the_reconstruction_error():
    """sigma="optimal": while training sigma^2 is the batch's mean squared error (+ min_sigma^2),
    and evaluation uses the running mean of it, debiased (Rybkin et al. 2021)."""
    model = prior_posterior_model(torch.full((3,), 0.5), Part("gaussian"))
    lik = model.likelihood
    assert lik.mode == "optimal" and float(lik.variance()) == pytest.approx(1.0 + 1e-6)  # before any training
    model.train()
    x = torch.tensor([[0.5, 0.7, 0.1], [0.2, 0.5, 0.9]])
    mse = float(((x - 0.5) ** 2).mean())
    lp = model.decode(torch.zeros(2, 2)).log_prob(x)
    expected = Normal(0.5, math.sqrt(mse + 1e-6)).log_prob(x).sum(1)
    assert torch.allclose(lp, expected, atol=1e-5)
    assert float(lik.variance()) == pytest.approx(mse + 1e-6, rel=1e-5)  # debiased after one step
    lp2 = model.decode(torch.zeros(2, 2)).log_prob(x * 0 + 0.5 + 0.1)     # a second batch, mse 0.01
    assert torch.allclose(lp2, Normal(0.5, math.sqrt(0.01 + 1e-6)).log_prob(x * 0 + 0.6).sum(1), atol=1e-4)
    w1, w2 = 0.99 * 0.01, 0.01                                             # EMA weights, then debiased
    assert float(lik.variance()) == pytest.approx((w1 * mse + w2 * 0.01) / (w1 + w2) + 1e-6, rel=1e-5)
    model.eval()
    lp_eval = model.decode(torch.zeros(2, 2)).log_prob(x)
    assert torch.allclose(lp_eval, Normal(0.5, lik.variance().sqrt()).log_prob(x).sum(1), atol=1e-5)


def test_gaussian_default_does_not_collapse_on_images_but_sigma_one_does(tmp_path):
    kl = {}
    for name, sets in (("optimal", []), ("one", ['model.likelihood.args.sigma="1.0"'])):
        model = vaekit.train("digits", likelihood="gaussian", hidden=[64], epochs=8, out=tmp_path / name,
                             progress=False, sets=sets)
        kl[name] = evaluate_elbo(model, vaekit.load_data("digits").test)["kl"]
    assert kl["one"] < 0.1 < 1 < kl["optimal"]


@pytest.mark.parametrize("mode", ["learned", "learned-per-value"])
def test_learned_sigma_has_a_smooth_floor_that_never_stops_its_gradient(mode):
    model = prior_posterior_model(torch.zeros(3), Part("gaussian", {"sigma": mode}))
    with torch.no_grad():
        model.likelihood.log_sigma.fill_(-40.0)  # far below the floor
    assert torch.allclose(model.likelihood.variance(), torch.tensor(1e-6))  # sigma = min_sigma = 1e-3
    x = torch.full((4, 3), 1e-4)
    model.decode(torch.zeros(4, 2)).log_prob(x).sum().backward()
    with torch.no_grad():
        model.likelihood.log_sigma.fill_(-5.0)
    model.likelihood.log_sigma.grad = None
    model.decode(torch.zeros(4, 2)).log_prob(x).sum().backward()
    assert model.likelihood.log_sigma.grad.abs().min() > 0  # a hard clamp would give exactly 0 here
    assert model.likelihood.log_sigma.numel() == (1 if mode == "learned" else 3)


def test_posterior_log_variance_clamp():
    """The posterior's log-variance is clamped to [-30, 20]: a diverging encoder gives a large
    loss rather than inf (moving the bounds fails here)."""
    model = prior_posterior_model(torch.zeros(3), Part("gaussian", {"sigma": 1.0}))
    with torch.no_grad():
        model.posterior.head.bias[2:] = torch.tensor([-100.0, 100.0])
    std = model.encode(torch.zeros(1, 3)).base_dist.scale[0]
    assert torch.allclose(std, torch.tensor([math.exp(-15.0), math.exp(10.0)]))


# -- reported numbers ----------------------------------------------------------------------
def test_bits_per_dim_exact_for_binary_data_with_bernoulli():
    p = torch.tensor([0.2, 0.9, 0.5, 0.5])
    model = prior_posterior_model(torch.logit(p), Part("bernoulli"))
    info = DataInfo("binary", "image", (4,), extra={"levels": 2})
    x = (torch.rand(500, 4) < 0.5).float()
    r = evaluate_elbo(model, TensorData(x), info=info)
    exact = float(torch.distributions.Bernoulli(p).log_prob(x).sum(1).mean())  # KL is exactly 0 here
    assert r["elbo"] == pytest.approx(exact, abs=1e-4)
    assert r["bits_per_dim"] == pytest.approx(-exact / (4 * math.log(2)), abs=1e-5)
    assert r["bits_per_dim_method"].startswith("exact")


def test_no_bits_per_dim_for_bernoulli_on_grey_values():
    model = prior_posterior_model(torch.zeros(4), Part("bernoulli"))
    info = DataInfo("grey", "image", (4,), extra={"levels": 256})
    r = evaluate_elbo(model, TensorData(torch.rand(10, 4)), info=info)
    assert "bits_per_dim" not in r and "not a normalised distribution" in r["bits_per_dim_none"]


@pytest.mark.parametrize("levels", [5, 256])
def test_bits_per_dim_dequantized_for_a_density_on_quantized_data(levels):
    """Known answer: a fixed-sigma Gaussian that ignores z; at x + u, u ~ U(-1/2, 1/2) / (L - 1),
    the expected log density has E[(x + u - m)^2] = (x - m)^2 + 1 / (12 (L - 1)^2), and
    log P(x) >= E[log p(x + u)] - D log(L - 1) (Theis et al. 2016)."""
    sigma, m = 0.05, torch.tensor([0.3, 0.6])
    model = prior_posterior_model(m, Part("gaussian", {"sigma": sigma}))
    info = DataInfo("quantized", "image", (2,), extra={"levels": levels})
    torch.manual_seed(0)
    x = torch.randint(0, levels, (20000, 2)).float() / (levels - 1)
    r = evaluate_elbo(model, TensorData(x), info=info)
    sq = ((x - m) ** 2).sum(1) + 2 / (12 * (levels - 1) ** 2)
    log_p = float((-sq / (2 * sigma ** 2)).mean()) - 2 * math.log(sigma * math.sqrt(2 * math.pi))
    expected = -(log_p - 2 * math.log(levels - 1)) / (2 * math.log(2))
    # sampling noise: about 0.1 bits at L = 5; leaving out the dequantization noise is 1.5 bits off
    assert r["bits_per_dim"] == pytest.approx(expected, abs=0.4 if levels == 5 else 2e-3)
    assert r["bits_per_dim_method"].startswith("dequantized")
    assert r["bits_per_dim"] > 0  # the undequantized -elbo / (D ln 2) is negative for 8-bit data here


def test_table_log_densities_are_in_original_units():
    """A standardized table's density gets the Jacobian -sum log std (the units are labelled)."""
    std = [2.0, 0.5, 10.0]
    model = prior_posterior_model(torch.tensor([0.1, -0.2, 0.3]), Part("gaussian", {"sigma": 1.0}))
    info = DataInfo("t", "table", (3,), mean=[0.0, 1.0, 2.0], std=std)
    x = torch.randn(50, 3)
    r = evaluate_log_likelihood(model, TensorData(x), k=3, info=info)
    exact = float(Normal(torch.tensor([0.1, -0.2, 0.3]), 1.0).log_prob(x).sum(1).mean())
    assert r["log_likelihood"] == pytest.approx(exact - sum(math.log(s) for s in std), abs=1e-4)
    assert "original units" in r["units"]
    e = evaluate_elbo(model, TensorData(x), info=info)
    assert e["elbo"] == pytest.approx(r["log_likelihood"], abs=1e-4)  # KL = 0, decoder ignores z
    assert e["recon"] == pytest.approx(-e["elbo"], abs=1e-4)


def test_standard_error_is_std_over_sqrt_n_and_zero_for_one_example():
    model = prior_posterior_model(torch.zeros(3), Part("gaussian", {"sigma": 1.0}))
    x = torch.randn(40, 3) * torch.arange(1, 41).float()[:, None] / 10
    r = evaluate_log_likelihood(model, TensorData(x), k=2)
    values = Normal(0.0, 1.0).log_prob(x).sum(1).double()   # deterministic: q = p and the decoder ignores z
    assert r["log_likelihood"] == pytest.approx(float(values.mean()), abs=1e-4)
    assert r["log_likelihood_se"] == pytest.approx(float(values.std() / math.sqrt(40)), rel=1e-4)
    one = evaluate_log_likelihood(model, TensorData(x[:1]), k=2)
    assert one["log_likelihood_se"] == 0.0 and standard_error(torch.tensor([1.0])) == 0.0
    json.dumps(one, allow_nan=False)  # valid JSON


def test_importance_sampling_memory_is_bounded_whatever_k():
    model = prior_posterior_model(torch.zeros(3), Part("gaussian", {"sigma": 1.0}))
    x = torch.randn(8, 3)
    log_px, ratio = importance_weight_parts(model, x, k=1000, max_rows=64)
    assert log_px.shape == (1000, 8) and max(model.decoder.calls) <= 64
    assert torch.allclose(ratio, torch.zeros_like(ratio), atol=1e-5)


def test_cvae_labels_stay_with_their_examples_inside_importance_sampling():
    """Decoder mean = 10 * one-hot(label), q = p: log p(x | c) is exact per example, and any
    reordering of labels across the k repeats makes it far off."""
    model = prior_posterior_model(torch.zeros(3), Part("gaussian", {"sigma": 1.0}), conditional=True,
                                  num_classes=3, scale=10.0)
    y = torch.tensor([0, 1, 2, 2, 1, 0, 1])
    x = 10 * torch.nn.functional.one_hot(y, 3).float() + 0.1 * torch.randn(7, 3)
    ll = log_likelihood(model, x, y, k=5, max_rows=14)   # chunks of 2 repeats
    exact = Normal(10 * torch.nn.functional.one_hot(y, 3).float(), 1.0).log_prob(x).sum(1)
    assert torch.allclose(ll, exact, atol=1e-4)


def test_mse_is_of_the_posterior_mean_not_a_sample():
    torch.manual_seed(0)
    model = vaekit.models.build_model(ModelConfig(network=Part("mlp", {"hidden": [16]}), latent_dim=2,
                                                  data_shape=[1, 4, 4])).eval()
    x = torch.rand(30, 1, 4, 4)
    torch.manual_seed(1)
    a = reconstruction_error(model, TensorData(x))
    torch.manual_seed(2)
    b = reconstruction_error(model, TensorData(x))
    with torch.no_grad():
        x_hat = model.decode(model.encode(x).mean).mean
    assert a == b and a["mse"] == pytest.approx(float(((x_hat - x) ** 2).mean()), rel=1e-5)
    bce = torch.nn.functional.binary_cross_entropy(x_hat, x, reduction="sum") / 30
    assert a["bce"] == pytest.approx(float(bce), rel=1e-4)


# -- objectives ----------------------------------------------------------------------------
def _small_vae(structure="vae"):
    torch.manual_seed(0)
    cfg = ModelConfig(network=Part("mlp", {"hidden": [16]}), latent_dim=3, data_shape=[1, 4, 4],
                      structure=Part(structure))
    return vaekit.models.build_model(cfg)


@pytest.mark.parametrize("structure", ["vae", "ladder"])
def test_reconstruction_gradient_reaches_the_encoder_through_the_sample(structure):
    """The reparameterization trick: with beta = 0 the loss is the reconstruction term alone,
    and it reaches the encoder only through z = mu + sigma * eps (``sample`` would cut it)."""
    model = _small_vae(structure)
    loss = ELBO(beta=0.0)(model, torch.rand(8, 1, 4, 4)).losses["main"]
    loss.backward()
    encoder_grads = [p.grad for n, p in model.named_parameters() if n.startswith(("encoder", "posterior"))]
    assert encoder_grads and all(g is not None for g in encoder_grads)
    assert sum(float(g.abs().sum()) for g in encoder_grads) > 0


def test_reported_elbo_is_the_true_bound_under_free_bits():
    model = _small_vae()
    x = torch.rand(8, 1, 4, 4)
    torch.manual_seed(5)
    lo = ELBO(free_bits=5.0)(model, x)
    torch.manual_seed(5)
    with torch.no_grad():
        t = elbo_terms(model(x), x)
    assert float(lo.terms["kl"]) == pytest.approx(float(t.kl.mean()), rel=1e-5)
    assert float(lo.terms["elbo"]) == pytest.approx(float(t.elbo.mean()), rel=1e-5)
    assert float(lo.losses["main"].detach()) > float(t.recon.mean() + t.kl.mean()) + 1  # the penalty is not the KL


def test_free_bits_clamp_the_batch_mean_of_each_dimension():
    """KL per dimension mu^2 / 2 for mu in {0, 2}: batch mean 1, so lambda = 1.5 gives 1.5
    (clamping each example instead would give (1.5 + 2) / 2 = 1.75)."""
    mu = torch.tensor([[0.0], [2.0]])
    q = Independent(Normal(mu, torch.ones_like(mu)), 1)
    prior = Independent(Normal(torch.zeros(1), torch.ones(1)), 1)
    layer = Latent(q, mu, prior)
    assert float(ELBO(free_bits=1.5)._free_bits(layer, kl_term(q, prior, mu))) == pytest.approx(1.5)
    assert float(ELBO(free_bits=0.5)._free_bits(layer, kl_term(q, prior, mu))) == pytest.approx(1.0)


def test_monte_carlo_kl_is_used_where_no_closed_form_exists():
    q = Independent(Normal(torch.tensor([[0.5, -0.5]]), torch.tensor([[0.7, 1.2]])), 1)
    mix = MixtureSameFamily(Categorical(torch.ones(2)),
                            Independent(Normal(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.ones(2, 2)), 1))
    z = torch.tensor([[0.1, 0.2]])
    assert torch.allclose(kl_term(q, mix, z), q.log_prob(z) - mix.log_prob(z))
    out = ModelOutput(px=Independent(Normal(torch.zeros(1, 2), 1.0), 1), latents=[Latent(q, z, mix)])
    t = elbo_terms(out, torch.zeros(1, 2))
    assert torch.allclose(t.kl, q.log_prob(z) - mix.log_prob(z)) and float(t.kl.abs()) > 0.01


class DataMean(Objective):
    """A deterministic objective whose ``elbo`` term is the batch mean of x: the trainer's epoch
    average of it must be the mean over all training examples."""

    def __call__(self, model, x, c=None, kl_weight=1.0):
        zero = sum(p.sum() for p in model.parameters()) * 0.0
        return LossOutput({"main": zero}, {"elbo": x.flatten(1).mean(1).mean(), "recon": zero, "kl": zero})


def test_train_metrics_average_over_examples_not_batches(tmp_path):
    if "test-data-mean" not in OBJECTIVES:
        OBJECTIVES.register("test-data-mean")(DataMean)
    np.save(tmp_path / "t.npy", np.arange(50, dtype=np.float32).reshape(25, 2) ** 2)
    vaekit.train(str(tmp_path / "t.npy"), hidden=[8], epochs=1, batch_size=6, val_fraction=0, objective="test-data-mean",
                 out=tmp_path / "r", progress=False)
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0])
    train = vaekit.load_data(str(tmp_path / "t.npy"), val_fraction=0).train
    assert len(train) == 20  # batches of 6, 6, 6 and 2: a mean of batch means would differ
    assert row["train_elbo"] == pytest.approx(float(train.x.double().mean()), abs=1e-6)


# -- the likelihood estimate ---------------------------------------------------------------
def ppca(seed=0):
    """A linear-Gaussian model x = W z + b + sigma eps with a general (non-orthogonal) W: log p(x)
    = log N(x; b, W W^T + sigma^2 I) exactly. The encoder is the exact posterior mean with the
    diagonal of the exact posterior covariance, so q is not the true posterior and the bound has
    a real gap to close."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 2, generator=g)
    w[:, 1] += 0.8 * w[:, 0]                                   # correlated columns: a full posterior covariance
    b, sigma = torch.randn(4, generator=g), 0.5

    class Linear(torch.nn.Module):
        out_dim = 4

        def __init__(self, weight, bias):
            super().__init__()
            self.net = torch.nn.Linear(weight.shape[1], weight.shape[0])
            with torch.no_grad():
                self.net.weight.copy_(weight)
                self.net.bias.copy_(bias)

        def forward(self, v, c=None):
            return self.net(v)

    cov = torch.linalg.inv(torch.eye(2) + w.T @ w / sigma ** 2)
    gain = cov @ w.T / sigma ** 2
    cfg = ModelConfig(likelihood=Part("gaussian", {"sigma": sigma}), latent_dim=2, data_shape=[4])
    model = build_model(cfg, encoder=Linear(torch.eye(4), torch.zeros(4)), decoder=Linear(w, b))
    with torch.no_grad():
        model.posterior.head.weight.zero_()
        model.posterior.head.weight[:2] = gain
        model.posterior.head.bias.zero_()
        model.posterior.head.bias[:2] = -gain @ b
        model.posterior.head.bias[2:] = torch.log(torch.diagonal(cov))
    exact = MultivariateNormal(b, w @ w.T + sigma ** 2 * torch.eye(4))
    return model.eval(), exact


def test_ppca_estimate_matches_the_exact_log_likelihood_and_tightens_with_k():
    model, exact = ppca()
    torch.manual_seed(0)
    x = exact.sample((300,))
    truth = float(exact.log_prob(x).mean())
    torch.manual_seed(1)
    elbo = evaluate_elbo(model, TensorData(x))["elbo"]
    estimates = {}
    for k in (1, 10, 100, 1000):
        torch.manual_seed(2)
        estimates[k] = evaluate_log_likelihood(model, TensorData(x), k=k)
    ll = {k: r["log_likelihood"] for k, r in estimates.items()}
    assert truth - elbo > 0.05                                        # the diagonal posterior leaves a gap
    se1 = estimates[1]["log_likelihood_se"]
    assert abs(ll[1] - elbo) < 3 * se1                                # k = 1 is a single-sample ELBO
    assert ll[1] < ll[10] < ll[100] <= ll[1000] + 1e-3                # tightens with k
    assert abs(ll[1000] - truth) < 3 * estimates[1000]["log_likelihood_se"] and abs(ll[1000] - truth) < 0.01
    assert -(-ll[1000]) >= elbo                                       # -NLL is at least the ELBO


def test_estimate_does_not_decrease_with_k_on_average():
    model, exact = ppca(seed=1)
    torch.manual_seed(0)
    x = exact.sample((20,))
    means = []
    for k in (1, 2, 4, 8, 16):
        reps = [float(log_likelihood(model, x, k=k).mean()) for _ in range(30)]
        means.append(sum(reps) / len(reps))
    assert all(a <= b + 1e-3 for a, b in zip(means, means[1:])) and means[-1] - means[0] > 0.05


# -- the ELBO decomposition ----------------------------------------------------------------
def test_active_units_by_the_variance_of_posterior_means():
    means = torch.stack([torch.randn(500), 0.05 * torch.randn(500), torch.zeros(500)], 1)
    assert active_units(means).tolist() == [True, False, False]  # variances 1, 0.0025, 0 vs 0.01


def test_decomposition_sums_to_the_kl_and_warns_on_collapse():
    model = _small_vae().eval()
    data = TensorData(torch.rand(64, 1, 4, 4))
    d = decomposition(model, data)
    torch.manual_seed(0)
    assert sum(d["kl_per_dim"]) == pytest.approx(evaluate_elbo(model, data)["kl"], rel=1e-3, abs=1e-3)
    collapsed = prior_posterior_model(torch.zeros(16), Part("bernoulli"))
    d = decomposition(collapsed, TensorData(torch.rand(32, 16)))
    assert d["active_units"] == 0 and d["kl_per_dim"] == [0.0, 0.0] and "posterior collapse" in d["warning"]


@pytest.mark.parametrize("kind", ["vae", "cvae", "vamp"])
def test_encoding_once_gives_the_same_weights_as_repeating_the_batch(kind):
    """The one-latent VAE's ``forward_many`` (the encoder run once for k samples) draws the same z
    from the same random numbers as k repeats of the batch, so the log weights agree."""
    from vaekit.contract.bounds import log_importance_weights

    torch.manual_seed(0)
    cfg = ModelConfig(network=Part("mlp", {"hidden": [16]}), latent_dim=3, data_shape=[1, 4, 4],
                      conditional=kind == "cvae", num_classes=3 if kind == "cvae" else None,
                      prior=Part("vamp", {"components": 5}) if kind == "vamp" else Part("normal"))
    model = vaekit.models.build_model(cfg).eval()
    x, y = torch.rand(6, 1, 4, 4), (torch.tensor([0, 1, 2, 0, 1, 2]) if kind == "cvae" else None)

    class Repeating(torch.nn.Module):  # the same model without forward_many: the general path
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, c=None):
            return self.inner(x, c)

    with torch.no_grad():
        torch.manual_seed(1)
        fast = log_importance_weights(model, x, y, k=7, max_rows=12)
        torch.manual_seed(1)
        slow = log_importance_weights(Repeating(model), x, y, k=7, max_rows=12)
    assert fast.shape == (7, 6) and torch.allclose(fast, slow, atol=1e-4)


def test_minibatch_stratified_weights_follow_chen_et_al_appendix_c2():
    """B = 4, N = 10, M = B - 1 = 3: 1/N on the diagonal, (N - M)/(N M) = 7/30 for the next example and
    1/M for the other two; every row sums to 1 (an estimate of q(z), a mixture over the data)."""
    from vaekit.objectives.tc import log_weight_matrix
    a, c, o = 1 / 10, 7 / 30, 1 / 3
    expected = torch.tensor([[a, c, o, o], [o, a, c, o], [o, o, a, c], [c, o, o, a]], dtype=torch.float64)
    w = log_weight_matrix(4, 10, "mss").double().exp()
    assert torch.allclose(w, expected, atol=1e-6)
    assert torch.allclose(w.sum(1), torch.ones(4, dtype=torch.float64), atol=1e-6)
    big = log_weight_matrix(64, 60000, "mss").double().exp()
    assert torch.allclose(big.sum(1), torch.ones(64, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(big.diagonal(), torch.full((64,), 1 / 60000, dtype=torch.float64))


def test_psnr_by_hand():
    """10 log10(1 / MSE) per image, then the mean over images: an error of 0.1 everywhere is 20 dB,
    0.01 is 40 dB; an exact copy is capped at 100 dB."""
    from vaekit.evaluate.recon import MAX_PSNR, psnr
    x = torch.full((3, 3, 4, 4), 0.5)
    x_hat = x.clone()
    x_hat[0] += 0.1
    x_hat[1] -= 0.01
    got = psnr(x, x_hat)
    assert torch.allclose(got, torch.tensor([20.0, 40.0, MAX_PSNR]), atol=1e-4)
    half = x.clone()
    half[0, :, :2] += 0.2  # half the values off by 0.2: MSE 0.02, 16.99 dB
    assert float(psnr(x[:1], half[:1])) == pytest.approx(10 * math.log10(1 / 0.02), abs=1e-4)
