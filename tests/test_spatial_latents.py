"""Latent maps (B, C, h, w), as in latent diffusion's autoencoders: every part of the contract.

A tiny spatial conv encoder/decoder of the interface the resnet network gives (``latent_shape``
(C, h, w), a moment map of means then log-variances) runs on the 8x8 digits.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

import vaekit
from vaekit.config import ModelConfig
from vaekit.contract.bounds import elbo_terms, importance_sampled_log_likelihood, log_importance_weights
from vaekit.data import load_data
from vaekit.data.types import TensorData
from vaekit.errors import VaekitError
from vaekit.evaluate.decomposition import active_units, decomposition
from vaekit.models.build import build_model
from vaekit.registry import PLOTS

C, H, W = 2, 4, 4  # the latent map of an 8x8 digit at f = 2


class MapEncoder(nn.Module):
    """x (B, 1, 8, 8) -> moment map (B, 2C, 4, 4): C means, then C log-variances."""

    out_dim = None
    latent_shape = (C, H, W)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2 * C, 3, stride=2, padding=1)

    def forward(self, x, c=None):
        return self.conv(x)


class MapDecoder(nn.Module):
    """z (B, C, 4, 4) -> Bernoulli logits (B, 1, 8, 8)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.ConvTranspose2d(C, 1, 4, stride=2, padding=1)

    def forward(self, z, c=None):
        return self.conv(z)


class FixedMoments(nn.Module):
    """A moment map that ignores x: ``mu`` and ``logvar`` (C, H, W) for every example."""

    out_dim = None
    latent_shape = (C, H, W)

    def __init__(self, mu, logvar):
        super().__init__()
        self.register_buffer("moments", torch.cat([mu, logvar]))

    def forward(self, x, c=None):
        return self.moments.expand(x.shape[0], *self.moments.shape)


def spatial_model(encoder=None, **cfg):
    model_cfg = ModelConfig(data_shape=(1, 8, 8), likelihood=vaekit.config.Part("bernoulli"), **cfg)
    return build_model(model_cfg, encoder=encoder or MapEncoder(), decoder=MapDecoder())


def binary(n=6, seed=0):
    return (torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def test_posterior_sample_prior_and_kl_carry_the_map_shape():
    model = spatial_model()
    assert model.latent_shape == (C, H, W) and model.latent_dim == C * H * W and model.spatial
    out = model(binary())
    layer = out.latents[0]
    assert isinstance(layer.q, Independent) and layer.q.batch_shape == (6,) and layer.q.event_shape == (C, H, W)
    assert layer.z.shape == (6, C, H, W) and layer.prior.event_shape == (C, H, W)
    assert model.prior_sample(3).shape == (3, C, H, W)
    t = elbo_terms(out, binary())
    assert t.kl.shape == t.recon.shape == t.elbo.shape == (6,)
    # a flattened code decodes like the map (samplers and interpolation hand over flat codes)
    z = layer.z.detach()
    assert torch.equal(model.decode(z.flatten(1)).mean, model.decode(z).mean)
    with pytest.raises(VaekitError, match=r"\(B, 2, 4, 4\) or \(B, 32\) flattened"):
        model.decode(torch.zeros(2, 31))


def test_closed_form_kl_of_a_map_matches_the_hand_computation():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(C, H, W, generator=g), torch.randn(C, H, W, generator=g) * 0.5
    model = spatial_model(FixedMoments(mu, logvar))
    out = model(binary(2))
    # KL(N(mu, s^2) || N(0, 1)) = 0.5 (mu^2 + s^2 - 1 - log s^2), summed over every value of the map
    expected = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum()
    assert elbo_terms(out, binary(2)).kl == pytest.approx(torch.full((2,), float(expected)), rel=1e-5)
    # and the Monte Carlo estimate agrees with it on average
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 3)
    z = q.sample((20000,))
    mc = (q.log_prob(z) - out.latents[0].prior.log_prob(z)).mean()
    assert float(mc) == pytest.approx(float(expected), abs=0.15)


def test_a_structure_of_vector_latents_says_why_it_takes_no_map(tmp_path):
    with pytest.raises(VaekitError, match="the jointvae model reads vector latents"):
        vaekit.train("digits", model="jointvae", encoder=MapEncoder(), decoder=MapDecoder(), epochs=1,
                     out=tmp_path / "r", progress=False)


def test_a_posterior_or_prior_without_latent_maps_says_why():
    with pytest.raises(VaekitError, match="the planar posterior is defined on vector latents"):
        spatial_model(posterior=vaekit.config.Part("planar"))
    model = spatial_model(prior=vaekit.config.Part("mog", {"components": 3}))  # a mixture over whole maps
    out = model(binary())
    assert out.latents[0].prior.event_shape == (C, H, W) and elbo_terms(out, binary()).kl.shape == (6,)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("spatial") / "r"
    model = vaekit.train("digits", encoder=MapEncoder(), decoder=MapDecoder(), likelihood="bernoulli", epochs=2,
                         batch_size=64, seed=3, out=out, progress=False)
    return model, out


def test_importance_sampled_likelihood_is_at_least_the_elbo(trained):
    model, _ = trained
    x = load_data("digits").test.x[:64]
    model.eval()
    with torch.no_grad():
        log_w = log_importance_weights(model, x, k=200)                        # (k, B)
        assert log_w.shape == (200, 64)
        elbo = torch.stack([elbo_terms(model(x), x).elbo for _ in range(20)]).mean(0)
        assert elbo.shape == (64,)
        ll = importance_sampled_log_likelihood(log_w)
    assert float(ll.mean()) >= float(elbo.mean()) and math.isfinite(float(ll.mean()))


@pytest.mark.parametrize("variant", ["vae", "beta-vae", "iwae", "factorvae"])
def test_variants_train_on_a_latent_map(tmp_path, variant):
    model = vaekit.train("digits", model=variant, encoder=MapEncoder(), decoder=MapDecoder(),
                         likelihood="bernoulli", epochs=1, batch_size=256, out=tmp_path / variant, progress=False)
    assert model.latent_shape == (C, H, W)


def test_active_units_are_counted_per_channel():
    means = torch.randn(100, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    means[:, 1] = 0.7 + 0.01 * means[:, 1]        # variance 1e-4 < 0.01: a dead channel
    assert active_units(means).tolist() == [True, False, True]
    # the activity of a channel is the mean over its positions: one lively position of four is not enough
    lone = torch.zeros(100, 1, 2, 2)
    lone[:, 0, 0, 0] = torch.randn(100, generator=torch.Generator().manual_seed(1)) * 0.2   # variance ~0.04 / 4
    assert active_units(lone).tolist() == [False]
    # a model whose channel 1 ignores x: one active channel of two, its KL reported per channel
    model = spatial_model()
    with torch.no_grad():
        model.encoder.conv.weight[[1, 3]] = 0.0      # channel 1's mean and log-variance do not move with x
    d = decomposition(model, TensorData(binary(64)))
    assert d["active_units"] == 1 and d["latent_channels"] == C and len(d["kl_per_channel"]) == C
    with torch.no_grad():
        kl = elbo_terms(model(binary(64)), binary(64)).kl.mean()
    assert sum(d["kl_per_channel"]) == pytest.approx(float(kl), rel=1e-3)


def test_encode_keeps_the_map_shape(trained, tmp_path):
    from vaekit.app.workflows import encode_run

    _, out = trained
    run = vaekit.open_run(out, encoder=MapEncoder(), decoder=MapDecoder())
    (path,) = encode_run(run, tmp_path / "z.npy")
    codes = np.load(path)
    assert codes.shape == (len(load_data("digits").test), C, H, W)


@pytest.mark.parametrize("name", ["latent", "traversal", "interpolation", "samples", "reconstructions", "manifold"])
def test_each_latent_plot_draws_or_says_why(trained, tmp_path, name):
    model, _ = trained
    plot = PLOTS.get(name)
    why = plot.applies_to(model)
    if name == "manifold":
        assert why and "latent map" in why
        with pytest.raises(VaekitError, match="does not apply to a latent map"):
            plot.draw(model, load_data("digits").test, tmp_path / "m.png")
        return
    assert why is None
    path = plot.draw(model, load_data("digits").test, tmp_path / f"{name}.png")
    assert path.exists() and path.stat().st_size > 1000


def test_a_map_run_resumes_exactly(tmp_path):
    def train(out, epochs, resume=False):
        torch.manual_seed(0)  # the same initial weights for both runs' modules
        kw = {} if resume else {"likelihood": "bernoulli", "batch_size": 256, "seed": 5}
        return vaekit.train(None if resume else "digits", encoder=MapEncoder(), decoder=MapDecoder(), epochs=epochs,
                            out=out, resume=resume, progress=False, **kw)

    straight = train(tmp_path / "straight", 3)
    train(tmp_path / "split", 2)
    split = train(tmp_path / "split", 3, resume=True)
    a, b = straight.state_dict(), split.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_autoencoder_kl_small_trains_a_latent_map(tmp_path):
    digits = load_data("digits").train  # its first 96: the recipe's 6M parameters took 4 s a pass over all 1797
    np.savez(tmp_path / "digits.npz", x=digits.x[:96].numpy(), y=digits.y[:96].numpy())
    model = vaekit.train(str(tmp_path / "digits.npz"), recipe="autoencoder-kl-small", epochs=1, batch_size=256,
                         out=tmp_path / "r", progress=False)
    assert model.spatial and model.latent_shape[0] == 4
    assert vaekit.open_run(tmp_path / "r").config.train.objective.args["beta"] == 1e-6
