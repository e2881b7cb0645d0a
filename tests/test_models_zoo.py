"""The five variants that prove the contract, each against a case with a known answer."""
import json
import math

import pytest
import torch

import vaekit
from vaekit.app.options import apply_options, base_config
from vaekit.data import load_data
from vaekit.data.types import DataSplits
from vaekit.errors import VaekitError
from vaekit.evaluate import evaluate_elbo, evaluate_log_likelihood
from vaekit.models.helpers import evaluating
from vaekit.registry import check_args
from vaekit.train import Trainer, build_objective
from vaekit.train.optimizers import make_optimizers

from conftest import small_parts as small  # noqa: E402

DIGITS = load_data("digits")


def _trainer(cfg, model, tmp_path):
    splits = DataSplits(DIGITS.train, DIGITS.val, DIGITS.test, DIGITS.info)
    trainer = Trainer(model, splits, cfg, tmp_path, progress=False)
    trainer.optimizers = make_optimizers(model.parameter_groups(), cfg.train)
    return trainer


@pytest.mark.parametrize("silenced", ["main", "discriminator"])
def test_factorvae_groups_move_only_on_their_own_loss(silenced, tmp_path):
    cfg, model = small("factorvae", sets=["model.structure.args.disc_hidden=32"])
    groups = model.parameter_groups()
    assert set(groups) == {"main", "discriminator"}
    assert len(cfg.train.group_optimizers) == 1
    ids = [{id(p) for p in g} for g in groups.values()]
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == len(list(model.parameters()))
    trainer = _trainer(cfg, model, tmp_path)
    assert trainer.optimizers["discriminator"].defaults["betas"] == (0.5, 0.9)
    before = {name: [p.detach().clone() for p in g] for name, g in groups.items()}
    torch.manual_seed(0)
    out = trainer.objective(model, DIGITS.train.x[:64])
    assert float(out.terms["tc"]) != 0.0  # the VAE loss does reach the discriminator's output
    losses = dict(out.losses)
    losses[silenced] = 0.0 * losses[silenced]     # zero gradient: Adam leaves the group still
    trainer.optimize(losses)
    for name, params in groups.items():
        moved = any(not torch.equal(a, p) for a, p in zip(before[name], params))
        assert moved == (name != silenced), name


def test_vqvae_uses_its_codebook_and_samples(tmp_path):
    model = vaekit.train("digits", model="vqvae", out=tmp_path / "vq", epochs=10, hidden=[64], latent_dim=4,
                         sets=["model.structure.args.codes=32", "model.structure.args.code_dim=4"],
                         progress=False)
    with evaluating(model):
        index, _ = model.quantize(model.encode_vectors(DIGITS.test.x))
    usage = torch.bincount(index.flatten(), minlength=32).double()
    p = usage / usage.sum()
    perplexity = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
    assert perplexity > 8.0, perplexity            # of 32 codes: no dead codebook
    # the fitted prior is the code frequencies of the training data, not uniform
    probs = model.prior_logits.exp()
    assert torch.allclose(probs.sum(1), torch.ones(4)) and float(probs.max()) > 2.0 / 32
    samples = model.sample(6)
    assert samples.shape == (6, 1, 8, 8) and torch.isfinite(samples).all()
    torch.manual_seed(0)
    result = evaluate_elbo(model, DIGITS.test)
    assert result["kl"] > 0 and math.isfinite(result["elbo"])
    with pytest.raises(VaekitError, match="manifold plot does not apply to the vqvae model: its latent"):
        from vaekit.app.plotting import plot_run
        plot_run(tmp_path / "vq", "manifold")


def test_ladder_importance_sampling_rises_with_k(tmp_path):
    model = vaekit.train("digits", model="ladder", out=tmp_path / "ladder", epochs=5, hidden=[64], latent_dim=8,
                         progress=False)
    assert len(model(DIGITS.test.x[:4]).latents) == 2
    data = DIGITS.test
    torch.manual_seed(0)
    elbo = evaluate_elbo(model, data)["elbo"]
    ll = {}
    for k in (1, 10, 100):
        torch.manual_seed(0)
        ll[k] = evaluate_log_likelihood(model, data, k=k)["log_likelihood"]
    assert ll[1] == pytest.approx(elbo, abs=0.3)      # k = 1 is a single-sample ELBO
    assert ll[100] > ll[10] > ll[1] + 0.2, ll
    assert ll[100] >= elbo


def test_tied_weights_save_and_load(tmp_path):
    from vaekit.rundir import load_weights, save_weights

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.Linear(5, 3, bias=False)
            self.dec = torch.nn.Linear(3, 5, bias=False)
            self.dec.weight = self.enc.weight  # same Parameter twice in the state dict (transposed use aside)

    a = Tied()
    save_weights(tmp_path / "w.safetensors", a)
    b = Tied()
    load_weights(tmp_path / "w.safetensors", b)
    assert torch.equal(a.enc.weight, b.enc.weight) and b.dec.weight is b.enc.weight


def test_constructor_args_are_checked_but_bugs_are_not_hidden():
    with pytest.raises(VaekitError, match="the prior 'vamp' has no option component; its options are: components"):
        small("vamp", sets=["model.prior.args.component=3"])

    def broken(latent_dim, size=1):
        return None + size  # a bug inside a constructor

    check_args(broken, {"size": 2}, "test")
    with pytest.raises(TypeError):
        broken(2, size=2)


def test_config_format_version_is_checked():
    with pytest.raises(VaekitError, match="format version 99.*upgrade vaekit"):
        vaekit.RunConfig.from_dict({"format_version": 99, "model": {}})


def test_precision_weighting_is_the_normalised_product_of_gaussians():
    from vaekit.models.ladder import _normal, precision_weighted

    up = _normal(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 2.0]]))
    down = _normal(torch.tensor([[3.0, 6.0]]), torch.tensor([[2.0 ** 0.5, 1.0]]))
    q = precision_weighted(up, down)
    # N(0, 1) x N(3, 2) ~ N(1, 2/3); N(1, 4) x N(6, 1) ~ N(5, 4/5)
    assert torch.allclose(q.base_dist.loc, torch.tensor([[1.0, 5.0]]))
    assert torch.allclose(q.base_dist.scale ** 2, torch.tensor([[2 / 3, 0.8]]))


def test_validation_computes_registered_metrics_by_name(tmp_path):
    vaekit.train("digits", out=tmp_path / "r", epochs=2, hidden=[32], progress=False,
                 sets=['train.val_metrics=[{"name": "nll", "args": {"k": 50}}]'])
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        assert row["val_iw_samples"] == 50
        assert row["val_log_likelihood"] > row["val_elbo"]  # the k-sample bound is tighter than the ELBO
    with pytest.raises(VaekitError, match="unknown metric 'nope'; choose one of: .*elbo, .*nll"):
        vaekit.train("digits", out=tmp_path / "s", epochs=1, progress=False, sets=['train.val_metrics=["nope"]'])
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_another_model_on_a_recipe_replaces_the_composition_keeps_the_settings():
    cfg = apply_options(base_config("factorvae"), {"model": "vae"})
    assert (cfg.model.structure.name, cfg.train.objective.name, cfg.train.group_optimizers) == ("vae", "elbo", {})
    assert cfg.train.lr == 1e-4 and cfg.model.network.name == "conv"   # the recipe's own settings stay
    cfg = apply_options(base_config("cvae"), {"model": "vamp"})
    assert not cfg.model.conditional and cfg.model.prior.name == "vamp"


@pytest.mark.parametrize("sets, needle", [
    (["train.objective.args.k=five"], "option k of the objective 'iwae' must be an integer, got 'five'"),
    (["train.objective.args.k=5.5"], "must be an integer, got 5.5"),
    (["model.network.args.hidden=64,32"], "option hidden of the network 'mlp' must be a list like"),
])
def test_part_options_of_the_wrong_kind_are_clear_errors(sets, needle, tmp_path):
    with pytest.raises(VaekitError, match=needle):
        vaekit.train("digits", model="iwae", out=tmp_path / "r", epochs=1, progress=False, sets=sets)
    assert not (tmp_path / "r").exists()


def test_a_model_and_objective_that_do_not_fit_write_nothing(tmp_path):
    with pytest.raises(VaekitError, match="the iwae objective gives no loss for this model's parameter group"):
        vaekit.train("digits", model="factorvae", objective="iwae", out=tmp_path / "a", epochs=1, progress=False,
                     sets=["model.structure.args.disc_hidden=8"])
    with pytest.raises(VaekitError, match="the vq objective needs a vector-quantised model"):
        vaekit.train("digits", objective="vq", out=tmp_path / "b", epochs=1, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_own_networks_of_the_wrong_size_get_a_clear_error(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self, n_in, n_out, shape):
            super().__init__()
            self.linear, self.shape = torch.nn.Linear(n_in, n_out), shape

        def forward(self, x, c=None):
            return self.linear(x.flatten(1)).view(-1, *self.shape)

    encoder = Net(64, 16, (16,))
    decoder = Net(2, 64, (1, 8, 8))  # the vqvae decoder is given N * D = 4 * 8 values, not 2
    with pytest.raises(VaekitError, match=r"your decoder is called with z of shape \(2, 32\) in the vqvae model"):
        vaekit.train("digits", model="vqvae", encoder=encoder, decoder=decoder, latent_dim=4, out=tmp_path / "r",
                     epochs=1, progress=False, sets=["model.structure.args.code_dim=8"])
    assert not (tmp_path / "r").exists()


def test_decode_checks_the_latent_shape():
    _, model = small("vqvae", sets=["model.structure.args.codes=8", "model.structure.args.code_dim=2"])
    x = DIGITS.test.x[:3]
    assert model.decode(model.embed(x)).mean.shape == (3, 1, 8, 8)
    with pytest.raises(VaekitError, match=r"decode takes code vectors such as model.embed\(x\), of shape \(B, 8\)"):
        model.decode(model.encode(x).mean)


def test_ladder_reconstructs_through_every_layer_posterior():
    _, model = small("ladder")
    x = DIGITS.test.x[:5]
    with torch.no_grad():
        latents = model._infer(x, None, lambda q: q.mean)
        expected = model._likelihood(latents[-1].z, None).mean
        top_only = model.decode(model.embed(x)).mean
    assert torch.allclose(model.reconstruct(x), expected)
    assert not torch.allclose(model.reconstruct(x), top_only)  # not just the top layer through prior means


def test_vq_objective_monitors_reconstruction():
    cfg, _ = small("vqvae")
    assert build_objective(cfg).monitor == ("recon", "min")


def test_models_json_lists_recipes_and_config(capsys):
    from conftest import run_cli

    code, out, _ = run_cli(["models", "--json"], capsys)
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and rows["cvae"]["recipes"] == ["cvae"]
    assert rows["vae"]["recipes"] == ["autoencoder-kl", "autoencoder-kl-small", "celeba64", "conv", "mlp", "resnet",
                                      "scvi"]
    assert rows["factorvae"]["config"]["train"]["objective"]["name"] == "factor"


def test_structures_refuse_objectives_they_cannot_train_with(tmp_path):
    with pytest.raises(VaekitError, match="the vqvae model trains with the vq objective, not elbo"):
        vaekit.train("digits", model="vqvae", objective="elbo", out=tmp_path / "a", epochs=1, progress=False)
    with pytest.raises(VaekitError, match="group_optimizers names disc, but this model's parameter groups are main"):
        vaekit.train("digits", out=tmp_path / "b", epochs=1, progress=False,
                     sets=['train.group_optimizers.disc={"name": "adam"}'])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_one_label_for_a_whole_batch_in_importance_sampling():
    from vaekit.evaluate import log_likelihood

    _, model = small("cvae")
    with evaluating(model):
        assert log_likelihood(model, DIGITS.test.x[:5], 3, k=4).shape == (5,)
        with pytest.raises(VaekitError, match="k >= 1"):
            log_likelihood(model, DIGITS.test.x[:5], 3, k=0)


def test_ladder_sizes_must_be_positive_integers():
    with pytest.raises(VaekitError, match="option hidden of the ladder model must be a list of positive integers"):
        small("ladder", sets=['model.structure.args.hidden=["a"]'])
    with pytest.raises(VaekitError, match="latent_dims of the ladder model"):
        small("ladder", sets=["model.structure.args.latent_dims=[2.7]"])


def test_permute_dims_shuffles_each_dimension_on_its_own():
    from vaekit.models.factorvae import permute_dims

    torch.manual_seed(0)
    z = torch.arange(40.0).view(10, 4) + torch.tensor([0.0, 100.0, 200.0, 300.0])
    p = permute_dims(z)
    for j in range(4):  # each column keeps its values ...
        assert torch.equal(p[:, j].sort().values, z[:, j])
    order = (p - torch.tensor([0.0, 100.0, 200.0, 300.0])) // 4  # ... in an order of its own
    assert len({tuple(order[:, j].tolist()) for j in range(4)}) > 1


def test_total_correlation_is_the_discriminator_log_odds():
    cfg, model = small("factorvae", sets=["model.structure.args.disc_hidden=4", "model.structure.args.disc_layers=1"])
    last = model.discriminator[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.5, -0.5]))        # D says "joint" with log-odds 2 everywhere
    out = build_objective(cfg)(model, DIGITS.train.x[:8])
    assert float(out.terms["tc"]) == pytest.approx(2.0)
    # and the discriminator loss is the cross-entropy of those logits on joint (0) and permuted (1) samples
    ce_joint, ce_perm = -torch.log_softmax(torch.tensor([1.5, -0.5]), 0)
    assert float(out.losses["discriminator"].detach()) == pytest.approx(0.5 * float(ce_joint + ce_perm), abs=1e-6)


def test_ema_codebook_update_is_the_smoothed_moving_average():
    from vaekit.models.vqvae import EMACodebook

    book = EMACodebook(codes=2, dim=1, decay=0.5, eps=0.0, restart=0.0)
    book.started.fill_(True)
    book.embedding.copy_(torch.tensor([[0.0], [10.0]]))
    book.ema_count.copy_(torch.tensor([1.0, 1.0]))
    book.ema_weight.copy_(torch.tensor([[0.0], [10.0]]))
    ze = torch.tensor([[1.0], [3.0], [9.0]])
    book.update(ze, book.nearest(ze))                      # codes 0, 0, 1
    # count = 0.5 * 1 + 0.5 * [2, 1] = [1.5, 1.0]; weight = 0.5 * [0, 10] + 0.5 * [4, 9] = [2.0, 9.5]
    assert torch.allclose(book.ema_count, torch.tensor([1.5, 1.0]))
    assert torch.allclose(book.embedding, torch.tensor([[2.0 / 1.5], [9.5]]))


def test_vq_reconstruction_reaches_the_encoder_straight_through():
    _, model = small("vqvae", sets=["model.structure.args.codes=8", "model.structure.args.code_dim=2"])
    x = DIGITS.train.x[:16]
    model(x)  # the first training batch initialises the codebook
    (-model(x).px.log_prob(x).sum()).backward()            # the reconstruction term only
    assert model.head.weight.grad is not None and float(model.head.weight.grad.abs().sum()) > 0
