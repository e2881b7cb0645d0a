"""The PatchGAN discriminator and its adversarial term (Esser et al. 2021) on a tiny 16 px autoencoder-kl:
each parameter group steps on its own loss, the adaptive weight and the discriminator's losses equal hand
computations, disc_start holds across a resume, and 2 + 1 epochs equal 3 bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import vaekit
from vaekit import rundir
from vaekit.app.options import apply_options, base_config
from vaekit.errors import VaekitError
from vaekit.models import build_model
from vaekit.objectives import build_objective
from vaekit.train.distributed import Dist
from vaekit.train.optimizers import step_all
from vaekit.train.watch import NonFiniteWatch

# the autoencoder-kl-small recipe at tiny widths; a 2-layer patchgan of width 8 (16 px images are padded to 12+)
TINY = dict(recipe="autoencoder-kl-small", widths="8,16", downsample=2)
SETS = ["model.network.args.norm_groups=4", "model.discriminator.args.width=8",
        "model.discriminator.args.n_layers=2"]


def tiny_config(**options):
    cfg = apply_options(base_config(TINY["recipe"]), {k: v for k, v in {**TINY, **options}.items() if k != "recipe"},
                        SETS)
    cfg.model.data_shape = [3, 16, 16]
    return cfg


def images(n=8, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).random((n, 3, 16, 16), dtype=np.float32))


def built(loss="hinge", seed=0):
    cfg = tiny_config()
    cfg.model.discriminator.args.update(loss=loss, disc_start=5)
    torch.manual_seed(seed)
    return build_model(cfg.model), build_objective(cfg)


def test_each_group_steps_on_its_own_loss_only():
    """One step of step_all with SGD(lr=1): each group moves by exactly minus the gradient of its own loss:
    the discriminator moves (its optimizer steps), by its own loss's gradient alone."""
    model, objective = built()
    x = images()
    groups = model.parameter_groups()
    assert set(groups) == {"main", "discriminator"}
    assert {id(p) for p in groups["discriminator"]} == {id(p) for p in model.adversary.parameters()}
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    torch.manual_seed(1)
    out = objective(model, x, step=5)
    expected = {g: torch.autograd.grad(out.losses[g], params, retain_graph=True) for g, params in groups.items()}
    torch.manual_seed(1)
    out = objective(model, x, step=5)
    optimizers = {g: torch.optim.SGD(params, lr=1.0) for g, params in groups.items()}
    step_all(optimizers, out.losses, watch=NonFiniteWatch(), dist=Dist(), step=1)
    names = {id(p): n for n, p in model.named_parameters()}
    for g, params in groups.items():
        moved = [before[names[id(p)]] - p.detach() for p in params]
        for m, e, p in zip(moved, expected[g], params):
            torch.testing.assert_close(m, e, rtol=1e-4, atol=1e-6, msg=f"{g}: {names[id(p)]}")
    assert any(bool(m.abs().sum() > 0) for m in (before[names[id(p)]] - p.detach() for p in groups["discriminator"]))
    assert any(bool(m.abs().sum() > 0) for m in (before[names[id(p)]] - p.detach() for p in groups["main"]))


def test_adaptive_weight_and_discriminator_losses_equal_hand_computations():
    """lambda = ||grad_GL L_rec|| / (||grad_GL L_GAN|| + 1e-4) at the decoder's last layer (Esser et al. 2021,
    eq. 7), times disc_weight; main = L_rec + weight * L_GAN, in value and in the autoencoder's gradient;
    the hinge and vanilla losses by hand."""
    x = images()
    for loss in ("hinge", "vanilla"):
        model, objective = built(loss)
        torch.manual_seed(3)
        out = objective(model, x, step=10)
        torch.manual_seed(3)
        rec = objective.base(model, x)                                   # the elbo objective alone: L_rec
        fake = rec.output.px.mean
        real_logits, fake_logits = model.adversary(x), model.adversary(fake)
        gan = -fake_logits.mean()
        layer = model.decoder.conv_out.weight
        g_rec = torch.autograd.grad(rec.loss, layer, retain_graph=True)[0]
        g_gan = torch.autograd.grad(gan, layer, retain_graph=True)[0]
        lam = torch.clamp(torch.linalg.vector_norm(g_rec) / (torch.linalg.vector_norm(g_gan) + 1e-4), 0, 1e4)
        weight = 0.5 * lam                                               # the recipe's disc_weight
        torch.testing.assert_close(out.terms["gan_weight"], weight)
        torch.testing.assert_close(out.terms["gan"], gan.detach())
        torch.testing.assert_close(out.loss, rec.loss + weight * gan)
        params = list(model.decoder.parameters()) + list(model.encoder.parameters())
        got = torch.cat([g.flatten() for g in torch.autograd.grad(out.loss, params, retain_graph=True)])
        want = torch.cat([g.flatten() for g in torch.autograd.grad(rec.loss + weight * gan, params, retain_graph=True)])
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))  # the autoencoder's
        if loss == "hinge":
            d_loss = 0.5 * (torch.clamp(1 - real_logits, min=0).mean() + torch.clamp(1 + fake_logits, min=0).mean())
        else:
            d_loss = 0.5 * (-F.logsigmoid(real_logits).mean() - torch.log1p(-torch.sigmoid(fake_logits)).mean())
        torch.testing.assert_close(out.losses["discriminator"], d_loss)
        assert float(d_loss.detach()) > 0


def test_before_disc_start_the_discriminator_sits_out():
    """Before disc_start: the main loss is L_rec alone and the discriminator's loss has no graph."""
    model, objective = built()
    x = images()
    torch.manual_seed(3)
    out = objective(model, x, step=4)                                    # disc_start 5
    torch.manual_seed(3)
    torch.testing.assert_close(out.loss, objective.base(model, x).loss)
    assert not out.losses["discriminator"].requires_grad and float(out.terms["gan_weight"]) == 0


def _train(out, epochs, **options):
    path = out.parent / "tiny.npz"
    if not path.exists():
        np.savez(path, x=images(24, seed=5).numpy())
    return vaekit.train(str(path), out=out, epochs=epochs, batch_size=8, val_fraction=0.0, progress=False,
                        sets=SETS, **TINY, **options)


def _disc_steps(run) -> set:
    """The Adam step count of each discriminator parameter in the run's state.pt."""
    state = torch.load(run / rundir.STATE, weights_only=True)
    opt = state["optimizers"]["discriminator"]["state"]
    return {int(s["step"]) for s in opt.values()}


def test_disc_start_holds_across_a_resume_and_resume_is_exact(tmp_path):
    """3 steps an epoch, disc_start 7: 2 epochs, then a resume to 3, equals 3 epochs straight, bit for bit,
    and in both the discriminator's optimizer has stepped exactly twice (steps 7 and 8)."""
    _train(tmp_path / "resumed", 2, disc_start=7)
    assert _disc_steps(tmp_path / "resumed") == set()                  # not started after 6 steps
    vaekit.train(out=tmp_path / "resumed", resume=True, epochs=3, progress=False)
    _train(tmp_path / "straight", 3, disc_start=7)
    a = load_file(str(tmp_path / "resumed" / rundir.WEIGHTS))
    b = load_file(str(tmp_path / "straight" / rundir.WEIGHTS))
    assert any(k.startswith("adversary.") and "running_mean" in k for k in a)   # BatchNorm's statistics saved
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert _disc_steps(tmp_path / "resumed") == _disc_steps(tmp_path / "straight") == {2}


def test_bad_discriminator_settings_say_what_to_fix(tmp_path):
    with pytest.raises(VaekitError, match="loss must be one of hinge, vanilla"):
        build_model(_with(tiny_config(), loss="wasserstein").model)
    table = apply_options(base_config(), {"discriminator": "patchgan"})
    table.model.data_shape = [5]
    with pytest.raises(VaekitError, match=r"reads images \(C, H, W\)"):
        build_model(table.model)
    with pytest.raises(VaekitError, match="splits its parameters into groups of its own"):
        vaekit.train("digits", model="aae", discriminator="patchgan", epochs=1, out=tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()


def _with(cfg, **args):
    cfg.model.discriminator.args.update(args)
    return cfg
