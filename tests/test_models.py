"""Table-driven checks on every registered network x likelihood x condition combination."""
import math

import pytest
import torch

from vaekit.config import ModelConfig, Part
from vaekit.distributions import kl_term
from vaekit.errors import VaekitError
from vaekit.models import build_model
from vaekit.objectives import ELBO
from vaekit.registry import LIKELIHOODS, NETWORKS
from vaekit.rundir import load_weights, save_weights

SHAPES = {"mlp": [(1, 8, 8), (5,)], "conv": [(1, 8, 8), (3, 13, 10)], "resnet": [(1, 8, 8), (3, 13, 10)]}
ARGS = {"mlp": {"hidden": [16]}, "conv": {"widths": [4, 8], "dense": 8},
        "resnet": {"widths": [4, 8], "blocks": 1, "dense": 8}}
ROWS = [
    (net, shape, lik, cond)
    for net in NETWORKS.names()
    for shape in SHAPES[net]
    for lik in LIKELIHOODS.names()
    for cond in (False, True)
]


def make(net, shape, lik, cond, latent=3):
    torch.manual_seed(0)
    cfg = ModelConfig(network=Part(net, dict(ARGS[net])), latent_dim=latent, likelihood=Part(lik),
                      data_shape=list(shape), conditional=cond, num_classes=4 if cond else None)
    return build_model(cfg)


def batch(shape, n=6):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, *shape, generator=g), torch.arange(n) % 4


def test_every_registered_network_and_likelihood_is_covered():
    assert {r[0] for r in ROWS} == set(NETWORKS.names())
    assert {r[2] for r in ROWS} == set(LIKELIHOODS.names())


@pytest.mark.parametrize("net,shape,lik,cond", ROWS)
def test_shapes_loss_gradients(net, shape, lik, cond):
    model = make(net, shape, lik, cond)
    x, y = batch(shape)
    y = y if cond else None
    q = model.encode(x, y)
    assert q.batch_shape == (6,) and q.event_shape == (3,)
    px = model.decode(q.rsample(), y)
    assert px.batch_shape == (6,) and tuple(px.event_shape) == shape
    out = ELBO()(model, x, y)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    # the loss is the negative ELBO when beta = 1, and KL is non-negative (abs: an ELBO near 0 from float32
    # terms of size ~1 that cancel, as the continuous Bernoulli's on a resnet, is exact to ~1e-7, not relatively)
    assert out.loss.item() == pytest.approx(-out.terms["elbo"].item(), rel=1e-5, abs=1e-6)
    assert out.terms["kl"].item() >= 0
    out.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert model.sample(5, 1 if cond else None).shape == (5, *shape)
    assert model.reconstruct(x, y).shape == x.shape


@pytest.mark.parametrize("net,shape,lik,cond", ROWS[::3])
def test_save_load_round_trip(tmp_path, net, shape, lik, cond):
    model = make(net, shape, lik, cond)
    x, y = batch(shape)
    y = y if cond else None
    save_weights(tmp_path / "w.safetensors", model)
    other = make(net, shape, lik, cond)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    load_weights(tmp_path / "w.safetensors", other)
    assert torch.equal(model.encode(x, y).mean, other.encode(x, y).mean)
    assert torch.equal(model.decode(model.encode(x, y).mean, y).mean, other.decode(other.encode(x, y).mean, y).mean)


@pytest.mark.parametrize("net,shape,lik,cond", ROWS[::4])
def test_deterministic_under_seed(net, shape, lik, cond):
    x, y = batch(shape)
    y = y if cond else None
    losses = []
    for _ in range(2):
        model = make(net, shape, lik, cond)
        torch.manual_seed(5)
        losses.append(ELBO()(model, x, y).loss.item())
    assert losses[0] == losses[1]


def test_reparameterized_sample_matches_posterior_moments():
    model = make("mlp", (5,), "gaussian", False)
    x, _ = batch((5,), n=1)
    q = model.encode(x)
    torch.manual_seed(0)
    z = q.rsample((20000,))  # (S, 1, D)
    assert torch.allclose(z.mean(0), q.mean, atol=0.05 * q.stddev.max().item())
    assert torch.allclose(z.std(0), q.stddev, rtol=0.03)


def test_closed_form_kl_matches_formula():
    model = make("mlp", (5,), "gaussian", False)
    x, _ = batch((5,))
    q = model.encode(x)
    mu, var = q.mean, q.variance
    expected = 0.5 * (var + mu ** 2 - 1 - var.log()).sum(-1)  # Kingma & Welling 2014, appendix B
    assert torch.allclose(kl_term(q, model.prior(), q.rsample()), expected, atol=1e-5)


def test_bernoulli_log_prob_is_negative_binary_cross_entropy():
    model = make("mlp", (1, 8, 8), "bernoulli", False)
    x, _ = batch((1, 8, 8))
    logits = model.decoder(torch.zeros(6, 3), None)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    assert torch.allclose(-model.likelihood(logits).log_prob(x), bce, atol=1e-4)


def test_gaussian_fixed_sigma_is_scaled_squared_error():
    cfg = ModelConfig(network=Part("mlp", {"hidden": [8]}), likelihood=Part("gaussian", {"sigma": 0.5}),
                      data_shape=[5])
    model = build_model(cfg)
    x, _ = batch((5,))
    mean = torch.zeros(6, 5)
    nll = -model.likelihood(mean).log_prob(x)
    expected = (x ** 2).sum(1) / (2 * 0.25) + 5 * (math.log(0.5) + 0.5 * math.log(2 * math.pi))
    assert torch.allclose(nll, expected, atol=1e-4)


def test_learned_sigma_is_a_parameter_that_gets_gradients():
    cfg = ModelConfig(network=Part("mlp", {"hidden": [8]}), likelihood=Part("gaussian", {"sigma": "learned"}),
                      data_shape=[5])
    model = build_model(cfg)
    x, _ = batch((5,))
    ELBO()(model, x).loss.backward()
    assert model.likelihood.log_sigma.grad is not None and model.likelihood.log_sigma.grad.abs().sum() > 0


def test_beta_and_free_bits_change_the_loss_not_the_reported_elbo():
    model = make("mlp", (5,), "gaussian", False)
    x, _ = batch((5,))
    torch.manual_seed(3)
    base = ELBO()(model, x)
    torch.manual_seed(3)
    beta = ELBO(beta=4.0)(model, x)
    assert beta.terms["elbo"].item() == pytest.approx(base.terms["elbo"].item())
    kl = base.terms["kl"].item()
    assert beta.loss.item() == pytest.approx(base.loss.item() + 3 * kl, rel=1e-5)
    torch.manual_seed(3)
    fb = ELBO(free_bits=5.0)(model, x)  # 5 nats per dim over 3 dims dominates the small KL
    assert fb.loss.item() == pytest.approx(base.terms["recon"].item() + 15.0, rel=1e-5)


def test_custom_encoder_and_decoder_modules():
    class Enc(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(5, 7)

        def forward(self, x, c=None):
            return torch.tanh(self.net(x))

    class Dec(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(2, 5)

        def forward(self, z, c=None):
            return self.net(z)

    cfg = ModelConfig(network=Part("mlp"), likelihood=Part("gaussian"), latent_dim=2, data_shape=[5])
    model = build_model(cfg, encoder=Enc(), decoder=Dec())
    x, _ = batch((5,))
    out = ELBO()(model, x)  # the posterior head infers the encoder's 7 features lazily
    assert model.posterior.head.in_features == 7 and torch.isfinite(out.loss)


@pytest.mark.parametrize("changes,needle", [
    ({"network": Part("nope")}, "unknown network 'nope'"),
    ({"likelihood": Part("skellam")}, "unknown likelihood 'skellam'"),
    ({"network": Part("conv"), "data_shape": [5]}, "needs images"),
    ({"conditional": True, "num_classes": None}, "needs labelled data"),
    ({"likelihood": Part("gaussian", {"sigma": -1})}, "must be positive"),
])
def test_bad_model_configs_are_clear_errors(changes, needle):
    cfg = ModelConfig(network=Part("mlp", {"hidden": [8]}), data_shape=[1, 8, 8])
    for k, v in changes.items():
        setattr(cfg, k, v)
    with pytest.raises(VaekitError, match=needle):
        build_model(cfg)


def test_shape_mismatch_and_missing_label_are_clear_errors():
    model = make("mlp", (1, 8, 8), "bernoulli", True)
    with pytest.raises(VaekitError, match=r"shape \(5,\).*\(1, 8, 8\)"):
        model.encode(torch.rand(2, 5), torch.zeros(2))
    with pytest.raises(VaekitError, match="pass the class labels"):
        model.sample(2)
    with pytest.raises(VaekitError, match="out of range"):
        model.sample(2, 9)
