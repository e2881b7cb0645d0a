"""The adversarial structures: the adversarial autoencoder (aae) and VAE-GAN (vae-gan)."""
import math

import pytest
import torch
import torch.nn.functional as F

import vaekit
from vaekit.app.options import apply_options, base_config
from vaekit.data import load_data
from vaekit.data.types import DataSplits
from vaekit.errors import VaekitError
from vaekit.models import build_model, elbo_terms
from vaekit.models.vaegan import FeatureDiscriminator
from vaekit.train import Trainer, build_objective
from vaekit.train.optimizers import make_optimizers

DIGITS = load_data("digits")
SMALL = {"aae": ["model.structure.args.disc_hidden=32"],
         "vae-gan": ["model.structure.args.disc_widths=[8,16,16]"]}
FAST = "train.group_optimizers.discriminator.args.lr=0.003"


def small(variant, sets=(), **options):
    cfg = apply_options(base_config(), dict({"model": variant, "hidden": [32], "latent_dim": 4}, **options),
                        list(SMALL[variant]) + list(sets))
    cfg.model.data_shape, cfg.model.num_classes = [1, 8, 8], 10
    torch.manual_seed(0)
    return cfg, build_model(cfg.model)


def trainer_for(cfg, model, tmp_path):
    splits = DataSplits(DIGITS.train, DIGITS.val, DIGITS.test, DIGITS.info)
    trainer = Trainer(model, splits, cfg, tmp_path, progress=False)
    trainer.optimizers = make_optimizers(model.parameter_groups(), cfg.train)
    return trainer


class Linear(torch.nn.Module):
    """A latent discriminator stand-in: logit = 0.5 * sum(z) + 0.7."""

    def forward(self, z):
        return 0.5 * z.sum(1, keepdim=True) + 0.7


CASES = [("aae", "main"), ("aae", "discriminator"),
         ("vae-gan", "main"), ("vae-gan", "decoder"), ("vae-gan", "discriminator")]


@pytest.mark.parametrize("variant, silenced", CASES)
def test_each_group_moves_only_on_its_own_loss(variant, silenced, tmp_path):
    cfg, model = small(variant)
    groups = model.parameter_groups()
    expected = {"aae": ["main", "discriminator"], "vae-gan": ["main", "decoder", "discriminator"]}[variant]
    assert list(groups) == expected
    ids = [{id(p) for p in g} for g in groups.values()]
    assert ids[-1] == {id(p) for p in model.discriminator.parameters()}
    if variant == "vae-gan":
        assert ids[1] == {id(p) for m in (model.decoder, model.likelihood) for p in m.parameters()}
    assert sum(map(len, ids)) == len(set().union(*ids)) == len(list(model.parameters()))
    trainer = trainer_for(cfg, model, tmp_path)
    assert trainer.optimizers["discriminator"].defaults["betas"] == (0.5, 0.999)
    before = {name: [p.detach().clone() for p in g] for name, g in groups.items()}
    torch.manual_seed(0)
    losses = dict(trainer.objective(model, DIGITS.train.x[:64]).losses)
    losses[silenced] = 0.0 * losses[silenced]      # zero gradient: Adam leaves that group still
    trainer.optimize(losses)
    for name, params in groups.items():
        moved = any(not torch.equal(a, p) for a, p in zip(before[name], params))
        assert moved == (name != silenced), name


@torch.no_grad()
def test_aae_losses_by_hand_for_a_fixed_discriminator():
    cfg, model = small("aae", sets=["train.objective.args.adversarial_weight=0.3"])
    model.discriminator = Linear()
    x = DIGITS.train.x[:16]
    torch.manual_seed(3)
    out = build_objective(cfg)(model, x)
    torch.manual_seed(3)
    full = model(x)
    t = elbo_terms(full, x)
    fake, real = Linear()(full.latents[0].z), Linear()(model.prior_sample(16))
    gen = -F.logsigmoid(fake).mean()                                  # non-saturating: -log D(z_q)
    disc = -F.logsigmoid(real).mean() - F.logsigmoid(-fake).mean()    # prior real, posterior fake
    assert float(out.losses["main"]) == pytest.approx(float(t.recon.mean() + 0.3 * gen), rel=1e-5)
    assert float(out.losses["discriminator"]) == pytest.approx(float(disc), rel=1e-5)
    assert float(out.terms["elbo"]) == pytest.approx(float(t.elbo.mean()), rel=1e-5)   # the true bound
    assert float(out.terms["kl"]) > 0


class Fixed(torch.nn.Module):
    """A VAE-GAN discriminator stand-in: logit = a * mean(x), features = x flattened."""

    def forward(self, x, layer):
        return 2.0 * x.flatten(1).mean(1, keepdim=True), x.flatten(1)


@torch.no_grad()
def test_vaegan_losses_by_hand_for_a_fixed_discriminator():
    cfg, model = small("vae-gan", sets=["train.objective.args.gamma=0.25"])
    model.discriminator = Fixed()
    x = DIGITS.train.x[:16]
    torch.manual_seed(4)
    out = build_objective(cfg)(model, x, kl_weight=0.5)
    torch.manual_seed(4)
    full = model(x)
    t = elbo_terms(full, x)
    x_rec = full.px.mean
    x_gen = model.decode(model.prior_sample(16), None).mean
    d = (x - x_rec).flatten(1)
    llike = (0.5 * d.pow(2) + 0.5 * math.log(2 * math.pi)).sum(1).mean()      # -log N(Dis_l(x) | Dis_l(x~), I)
    logit = lambda v: 2.0 * v.flatten(1).mean(1)                              # noqa: E731
    gan = (-F.logsigmoid(logit(x)) - F.logsigmoid(-logit(x_rec)) - F.logsigmoid(-logit(x_gen))).mean()
    assert float(out.terms["recon_dis"]) == pytest.approx(float(llike), rel=1e-5)
    assert float(out.losses["main"]) == pytest.approx(float(0.5 * t.kl.mean() + llike), rel=1e-5)
    assert float(out.losses["decoder"]) == pytest.approx(float(0.25 * llike - gan), rel=1e-5)
    assert float(out.losses["discriminator"]) == pytest.approx(float(gan), rel=1e-5)
    assert float(out.terms["elbo"]) == pytest.approx(float(t.elbo.mean()), rel=1e-5)   # pixel bound, not features
    assert float(out.terms["recon"]) == pytest.approx(float(t.recon.mean()), rel=1e-5)


def test_aae_discriminator_learns_to_tell_far_codes_from_the_prior(tmp_path):
    cfg, model = small("aae", sets=[FAST])
    trainer = trainer_for(cfg, model, tmp_path)
    objective = build_objective(cfg)
    with torch.no_grad():                            # an encoder whose codes sit far from N(0, I): mean 4
        model.posterior.head.bias[:4] += 4.0
    x = DIGITS.train.x[:64]
    torch.manual_seed(0)
    for _ in range(30):
        losses = dict(objective(model, x).losses)
        losses["main"] = 0.0 * losses["main"]        # train the discriminator only
        trainer.optimize(losses)
    with torch.no_grad():
        z_q = model(x).latents[0].z
        p_fake = torch.sigmoid(model.discriminator(z_q)).mean()
        p_real = torch.sigmoid(model.discriminator(torch.randn(256, 4))).mean()
    assert float(p_real) > 0.8 and float(p_fake) < 0.2, (float(p_real), float(p_fake))


def test_vaegan_discriminator_learns_to_tell_data_from_blank_images(tmp_path):
    cfg, model = small("vae-gan", sets=[FAST])
    trainer = trainer_for(cfg, model, tmp_path)
    objective = build_objective(cfg)
    x = DIGITS.train.x[:64]
    torch.manual_seed(0)
    for _ in range(40):
        losses = dict(objective(model, x).losses)
        losses["main"], losses["decoder"] = 0.0 * losses["main"], 0.0 * losses["decoder"]
        trainer.optimize(losses)
    with torch.no_grad():
        p_real = torch.sigmoid(model.discriminator(x, 1)[0]).mean()
        p_fake = torch.sigmoid(model.discriminator(model.sample(64), 1)[0]).mean()
    assert float(p_real) > 0.7 and float(p_fake) < 0.3, (float(p_real), float(p_fake))


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 5, 11), (1, 1, 1), (7,)])
def test_vaegan_discriminator_takes_data_of_any_size(shape):
    dis = FeatureDiscriminator(shape, [4, 6, 5])
    logit, features = dis(torch.rand(2, *shape), 2)
    assert logit.shape == (2, 1) and features.shape[0] == 2 and features.shape[1] % 6 == 0


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(VaekitError, match="recon_layer must be one of the discriminator's layers 1..3, got 4"):
        small("vae-gan", sets=["model.structure.args.recon_layer=4"])
    with pytest.raises(VaekitError, match="disc_layers >= 1"):
        small("aae", sets=["model.structure.args.disc_layers=0"])
    with pytest.raises(VaekitError, match="the aae model trains with the aae objective, not elbo"):
        vaekit.train("digits", model="aae", objective="elbo", out=tmp_path / "r", epochs=1, progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("variant", ["aae", "vae-gan"])
def test_one_epoch_on_digits_gives_a_negative_elbo(variant, zoo_run):
    """test_contract.py trains and evaluates every variant; here the Bernoulli bound is also below 0."""
    from vaekit.app.evaluations import evaluate_run

    result = evaluate_run(zoo_run(variant))
    assert math.isfinite(result["elbo"]) and result["elbo"] < 0
