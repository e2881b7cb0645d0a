"""``--perceptual W`` (vaekit/objectives/perceptual.py): W x LPIPS added to any objective's main loss."""
from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

import vaekit
from vaekit import rundir
from vaekit.app.api import train_run
from vaekit.app.evaluations import evaluate_run
from vaekit.errors import VaekitError
from vaekit.nn.lpips_weights import random_backbone, shipped_lin
from vaekit.objectives import ELBO, Perceptual, build_objective
from vaekit.objectives.base import LossOutput, Objective
from vaekit.registry import OBJECTIVES

pytestmark = pytest.mark.skipif(shipped_lin("vgg") is None, reason="the lpips package (its lin weights) is not "
                                "installed: pip install lpips==0.1.4 --no-deps")
DATA = "patches-16-n16"
SMALL = dict(model="vae", network="conv", widths=[8, 16], dense=16, latent_dim=4, batch_size=8, progress=False)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    path = tmp_path_factory.mktemp("lpips") / "vgg-random.pth"
    torch.save(random_backbone("vgg", 0), path)
    return str(path)


def config(backbone, weight=0.5, objective=None):
    from vaekit.app.options import apply_options, base_config

    options = dict(model="vae", network="conv", widths=[8, 16], dense=16, latent_dim=4, perceptual=weight,
                   likelihood="bernoulli")
    if objective:
        options["objective"] = objective
    cfg = apply_options(base_config(), options, [f"lpips.backbone={backbone}"])
    cfg.model.data_shape = [3, 16, 16]
    return cfg


def test_the_loss_is_the_inner_loss_plus_w_times_lpips_of_the_same_reconstruction(backbone):
    from vaekit.models import build_model

    cfg = config(backbone, weight=0.5)
    objective = build_objective(cfg)
    assert isinstance(objective, Perceptual) and objective.monitor == ("elbo", "max")
    torch.manual_seed(0)
    model = build_model(cfg.model)
    x = torch.rand(4, 3, 16, 16)
    torch.manual_seed(1)
    got = objective(model, x)
    torch.manual_seed(1)
    out = model(x)
    torch.manual_seed(1)
    inner = ELBO()(model, x)
    distance = objective.term.net(x, out.px.mean)
    assert float(got.terms["lpips"]) == pytest.approx(float(distance.mean().detach()), rel=1e-6)
    assert float(got.loss.detach()) == pytest.approx(float((inner.loss + 0.5 * distance.mean()).detach()), rel=1e-6)
    got.loss.backward()                                      # gradients reach the model, none the LPIPS network
    assert all(p.grad is None for p in objective.term.net.parameters())
    assert model.decoder.parameters().__next__().grad is not None


def test_an_objective_that_takes_the_term_adds_it_itself(backbone):
    class OwnTerm(Objective):
        def __init__(self, perceptual=None):
            self.perceptual = perceptual

        def __call__(self, model, x, c=None, kl_weight=1.0):
            x_hat = model(x, c).px.mean
            return LossOutput({"main": self.perceptual.weight * self.perceptual(x, x_hat).mean()},
                              {"elbo": torch.zeros(())})

    OBJECTIVES.register("own-term-test")(OwnTerm)
    try:
        objective = build_objective(config(backbone, 0.25, objective="own-term-test"))
    finally:
        OBJECTIVES._items.pop("own-term-test")
    assert isinstance(objective, OwnTerm) and objective.perceptual.weight == 0.25


def test_a_run_trains_with_it_keeps_lpips_out_of_its_files_and_resumes_exactly(backbone, tmp_path):
    sets = [f"lpips.backbone={backbone}"]
    straight = train_run(DATA, epochs=2, perceptual=0.5, sets=sets, out=tmp_path / "a", **SMALL)
    train_run(DATA, epochs=1, perceptual=0.5, sets=sets, out=tmp_path / "b", **SMALL)
    resumed = train_run(epochs=2, out=tmp_path / "b", resume=True, progress=False)
    row = straight.metrics()[-1]
    assert row["train_lpips"] > 0 and row["val_lpips"] > 0
    for run in (tmp_path / "a", tmp_path / "b"):
        with safe_open(str(run / rundir.WEIGHTS), "pt") as f:
            assert not any(k.startswith(("features.", "lin.")) or ".features." in k for k in f.keys())
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    got = evaluate_run(tmp_path / "a", metrics=["lpips"], split="val")   # the run's own LPIPS files
    assert got["lpips"] > 0 and got["lpips_net"] == "vgg (vgg-random.pth, lin of the lpips package)"


def test_a_run_without_the_backbone_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(VaekitError, match="LPIPS needs the vgg backbone weights.*--set lpips.backbone=PATH"):
        vaekit.train(DATA, epochs=1, perceptual=0.5, out=tmp_path / "run", **SMALL)
    assert not (tmp_path / "run").exists()
    with pytest.raises(VaekitError, match="--perceptual must be 0 or more"):
        vaekit.train(DATA, epochs=1, perceptual=-1.0, out=tmp_path / "run", **SMALL)


def test_an_objective_without_a_forward_pass_gets_the_decoded_posterior_mean(backbone):
    """IWAE decodes its k samples itself; the term then compares the decoded posterior mean."""
    from vaekit.models import build_model

    cfg = config(backbone, weight=0.5, objective="iwae")
    cfg.train.objective.args["k"] = 2
    torch.manual_seed(0)
    model = build_model(cfg.model)
    x = torch.rand(2, 3, 16, 16)
    objective = build_objective(cfg)
    torch.manual_seed(1)
    got = objective(model, x)
    torch.manual_seed(1)
    inner = objective.inner(model, x)
    with torch.no_grad():
        expected = objective.term.net(x, model.reconstruct(x))
    assert float(got.terms["lpips"]) == pytest.approx(float(expected.mean()), rel=1e-6)
    (got.loss - inner.loss).backward()                       # the term's own gradient reaches the encoder
    assert sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None) > 0
