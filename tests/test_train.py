"""The trainer: exact resume, crash safety, warm-up, early stopping, determinism."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.config import Part
from vaekit.errors import VaekitError
from vaekit.objectives import elbo as elbo_module
from vaekit.registry import VARIANTS

SMALL = dict(hidden=[32], batch_size=256, progress=False)


def rows(run):
    """The metric rows of a run (not its event rows), without the seconds."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines
            if "event" not in json.loads(line)]


def weights(run, name="model.safetensors"):
    return load_file(str(run / name))


def test_metrics_are_written_per_epoch_in_nats(tmp_path):
    model = vaekit.train("digits", out=tmp_path / "r", epochs=2, **SMALL)
    r = rows(tmp_path / "r")
    assert [row["epoch"] for row in r] == [1, 2]
    for row in r:
        for split in ("train", "val"):
            assert row[f"{split}_elbo"] == pytest.approx(-(row[f"{split}_recon"] + row[f"{split}_kl"]), rel=1e-6)
            assert row[f"{split}_kl"] > 0
    # a Bernoulli over 64 pixels starts near 64 ln 2 = 44 nats and must improve
    assert r[0]["train_recon"] < 64 * 0.7 and r[1]["val_elbo"] > r[0]["val_elbo"] - 1.0
    assert isinstance(model, vaekit.VAE) and vaekit.open_run(tmp_path / "r").dir == tmp_path / "r"
    assert (tmp_path / "r" / "config.json").exists() and (tmp_path / "r" / "state.pt").exists()


def test_resume_continues_exactly(tmp_path):
    vaekit.train("digits", out=tmp_path / "straight", epochs=3, seed=7, **SMALL)
    vaekit.train("digits", out=tmp_path / "split", epochs=2, seed=7, **SMALL)
    vaekit.train(out=tmp_path / "split", resume=True, epochs=3, progress=False)
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert rows(tmp_path / "straight") == rows(tmp_path / "split")


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        vaekit.train("digits", out=tmp_path / name, epochs=1, seed=seed, **SMALL)
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    assert rows(tmp_path / "a") != rows(tmp_path / "c")


def test_kl_warmup_is_linear_in_steps(tmp_path):
    vaekit.train("digits", out=tmp_path / "r", epochs=3, warmup=2, **SMALL)
    r = rows(tmp_path / "r")
    assert [row["kl_weight"] for row in r] == [0.5, 1.0, 1.0]
    # the weight really scales the KL in the loss: below the ELBO while warming up, equal after
    assert r[0]["train_loss"] < r[0]["train_recon"] + r[0]["train_kl"] - 0.1 * r[0]["train_kl"]
    assert r[2]["train_loss"] == pytest.approx(r[2]["train_recon"] + r[2]["train_kl"], rel=1e-6)


def test_failure_mid_training_keeps_last_checkpoint_and_resume_finishes(tmp_path, monkeypatch):
    run = tmp_path / "r"
    vaekit.train("digits", out=run, epochs=1, seed=3, **SMALL)
    saved = weights(run)
    real_call = elbo_module.ELBO.__call__
    calls = {"n": 0}

    def nan_after_two_steps(self, model, x, y=None, kl_weight=1.0):
        out = real_call(self, model, x, y, kl_weight)
        calls["n"] += 1
        if calls["n"] > 2:
            out.losses["main"] = out.losses["main"] * float("nan")
        return out

    monkeypatch.setattr(elbo_module.ELBO, "__call__", nan_after_two_steps)
    with pytest.raises(VaekitError, match=r"loss became nan.*last good checkpoint \(after 1 epoch, step 6\)"):
        vaekit.train(out=run, resume=True, epochs=3, nan_retries=0, progress=False)
    monkeypatch.setattr(elbo_module.ELBO, "__call__", real_call)
    after = weights(run)
    assert all(torch.equal(saved[k], after[k]) for k in saved)
    assert [row["epoch"] for row in rows(run)] == [1]
    model = vaekit.load(run)
    assert torch.isfinite(model.sample(4)).all()
    vaekit.train(out=run, resume=True, epochs=2, progress=False)
    assert [row["epoch"] for row in rows(run)] == [1, 2]


def test_resume_drops_metric_rows_written_after_the_checkpoint(tmp_path):
    run = tmp_path / "r"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 2, "train_elbo": 0.0}) + "\n" + '{"epoch": 3, "tra')
    vaekit.train(out=run, resume=True, epochs=2, progress=False)
    r = rows(run)
    assert [row["epoch"] for row in r] == [1, 2] and r[1]["train_elbo"] != 0.0


def test_early_stopping_stops_after_patience_and_keeps_best(tmp_path):
    run = tmp_path / "r"
    # a learning rate this small barely moves the model, so validation stalls quickly
    vaekit.train("digits", out=run, epochs=40, patience=2, optimizer="sgd", lr=1e-9, **SMALL)
    r = rows(run)
    best = max(r, key=lambda row: row["val_elbo"])
    assert len(r) < 40
    assert len(r) == best["epoch"] + 2
    state = torch.load(run / "state.pt", weights_only=True)
    assert state["stopped_early"] and state["best_epoch"] == best["epoch"]
    best_model = vaekit.load(run, checkpoint="best")
    assert best_model is not None


def test_grad_clip_bounds_the_update(tmp_path):
    # with SGD and lr 1, one clipped step moves the parameters by at most the clip norm
    run = tmp_path / "r"
    model0 = vaekit.train("digits", out=run, epochs=1, optimizer="sgd", lr=1e-12, **SMALL)
    before = torch.cat([p.detach().flatten() for p in model0.parameters()])
    vaekit.train("digits", out=tmp_path / "c", epochs=1, optimizer="sgd", lr=1.0, grad_clip=0.01,
                 batch_size=2000, hidden=[32], progress=False)
    after = torch.cat([p.detach().flatten() for p in vaekit.load(tmp_path / "c").parameters()])
    assert (after - before).norm() <= 0.01 + 1e-4


@pytest.mark.parametrize("kwargs,needle", [
    (dict(epochs=0), "--epochs must be at least 1"),
    (dict(lr=-1.0), "--lr must be positive"),
    (dict(patience=2, val_fraction=0.0), "--patience needs a validation split"),
    (dict(recipe="nope"), "unknown recipe 'nope'"),
    (dict(optimizer="lbfgs2"), "unknown optimizer"),
    (dict(device="tpu"), "--device must be"),
    (dict(hidden="64,x"), "--hidden takes positive comma-separated integers"),
    (dict(objective_args=1), "unknown option"),
])
def test_bad_training_options(tmp_path, kwargs, needle):
    with pytest.raises(VaekitError, match=needle):
        vaekit.train("digits", out=tmp_path / "r", epochs=kwargs.pop("epochs", 1), progress=False, **kwargs)
    assert not (tmp_path / "r").exists()  # nothing is written before every option is checked


def test_existing_run_is_not_overwritten(tmp_path):
    vaekit.train("digits", out=tmp_path / "r", epochs=1, **SMALL)
    before = (tmp_path / "r" / "model.safetensors").read_bytes()
    with pytest.raises(VaekitError, match="already holds a run"):
        vaekit.train("digits", out=tmp_path / "r", epochs=1, **SMALL)
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == before


def test_tables_default_to_gaussian_and_refuse_bernoulli(tmp_path):
    import numpy as np

    path = tmp_path / "t.npy"
    np.save(path, np.random.default_rng(0).random((200, 4)).astype("float32"))
    model = vaekit.train(str(path), out=tmp_path / "ok", epochs=1, **SMALL)
    assert type(model.likelihood) is vaekit.LIKELIHOODS.get("gaussian")
    assert vaekit.open_run(tmp_path / "ok").config.model.likelihood.name == "gaussian"
    with pytest.raises(VaekitError, match=r"is a table.*use --likelihood gaussian"):
        vaekit.train(str(path), out=tmp_path / "r", epochs=1, likelihood="bernoulli", progress=False)
    assert not (tmp_path / "r").exists()


def test_options_apply_in_any_order():
    from vaekit.app.options import apply_options, base_config

    a = apply_options(base_config(), dict(sigma="learned", likelihood="gaussian", widths=[8], network="conv"))
    b = apply_options(base_config(), dict(network="conv", widths=[8], likelihood="gaussian", sigma="learned"))
    assert a == b
    assert a.model.likelihood == Part("gaussian", {"sigma": "learned"})
    assert a.model.network == Part("conv", {"widths": [8]})


def test_sigma_needs_the_gaussian_likelihood(tmp_path):
    with pytest.raises(VaekitError, match="--sigma applies to the gaussian likelihood"):
        vaekit.train("digits", recipe="mlp", sigma="learned", out=tmp_path / "r", epochs=1, progress=False)


def test_nan_weights_at_the_end_of_an_epoch_are_never_saved(tmp_path, monkeypatch):
    run = tmp_path / "r"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    saved = weights(run)
    real_call = elbo_module.ELBO.__call__
    calls = {"n": 0}
    steps_per_epoch = 6  # 1294 training digits / batch 256; call 1 is the preflight check on two examples

    def poison_last_step(self, model, x, y=None, kl_weight=1.0):
        out = real_call(self, model, x, y, kl_weight)
        calls["n"] += 1
        if calls["n"] == 1 + steps_per_epoch:  # the loss stays finite, but its gradient is infinite
            p = next(model.parameters())  # sqrt(0) = 0, d sqrt/dx at 0 = inf
            out.losses["main"] = out.losses["main"] + torch.sqrt(p - p.detach()).sum()
        return out

    monkeypatch.setattr(elbo_module.ELBO, "__call__", poison_last_step)
    with pytest.raises(VaekitError, match=r"diverged \(non-finite .*\) at epoch 2;.*last good checkpoint \(after 1 epoch, step \d+\)"):
        vaekit.train(out=run, resume=True, epochs=2, nan_retries=0, progress=False)
    after = weights(run)
    assert all(torch.equal(saved[k], after[k]) for k in saved)
    assert torch.load(run / "state.pt", weights_only=True)["epoch"] == 1


def test_resume_is_exact_with_warmup_and_free_bits(tmp_path):
    opts = dict(warmup=2, free_bits=0.5, beta=2.0, seed=4, **SMALL)
    vaekit.train("digits", out=tmp_path / "a", epochs=3, **opts)
    vaekit.train("digits", out=tmp_path / "b", epochs=1, **opts)
    vaekit.train(out=tmp_path / "b", resume=True, epochs=3, progress=False)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    # resume rewrote the config with the new epochs, so a plain resume has nothing left to do
    assert vaekit.open_run(tmp_path / "b").config.train.epochs == 3


def test_overwrite_with_bad_data_keeps_the_old_run(tmp_path):
    vaekit.train("digits", out=tmp_path / "r", epochs=1, **SMALL)
    before = (tmp_path / "r" / "model.safetensors").read_bytes()
    with pytest.raises(VaekitError):
        vaekit.train(str(tmp_path / "missing.npy"), out=tmp_path / "r", overwrite=True, epochs=1, progress=False)
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == before
    assert vaekit.open_run(tmp_path / "r").config.data.source == "digits"


@pytest.mark.parametrize("damage", [
    lambda cfg: cfg["model"].update(latent_dim="two"),
    lambda cfg: cfg["data_info"].pop("shape"),
    lambda cfg: cfg.update(model=[]),
])
def test_damaged_config_is_a_clear_error(tmp_path, damage):
    vaekit.train("digits", out=tmp_path / "r", epochs=1, **SMALL)
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    damage(cfg)
    (tmp_path / "r" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VaekitError, match="config|data_info"):
        vaekit.load(tmp_path / "r")


def expected_config(spec: dict) -> dict:
    """What a recipe's run should save: its zoo variant's composition, then the recipe's own values on top
    (a part named again keeps the variant's args unless the recipe sets them)."""
    variant = VARIANTS.get(spec["model"].get("variant", "vae")).config
    expect = {}
    for section in ("model", "train"):
        merged = dict(variant.get(section, {}))
        for key, value in spec.get(section, {}).items():
            old = merged.get(key)
            if isinstance(value, dict) and isinstance(old, dict) and "name" in value and old.get("name") == value["name"]:
                value = {"name": value["name"], "args": {**old.get("args", {}), **value.get("args", {})}}
            merged[key] = value
        expect[section] = merged
    return expect


# recipes whose network cannot take 8x8 digits: the data they train on here, and why
# (the resnet recipes are also large: 48 colour images, not 1797 digits, keep them to seconds)
RECIPE_DATA = {"celeba64": ("tiny-rgb-64", "its 5 resnet widths halve the image 4 times, too often for 8x8"),
               "resnet": ("tiny-rgb-16", "it halves the image 3 times (f = 8), for colour images of 32 px and up"),
               "autoencoder-kl": ("tiny-rgb-16", "f = 8 and widths up to 512"),
               **{r: ("tiny-rgb-16", "f = 16 and widths up to 512") for r in ("vqgan", "fsq", "rvq")},
               **{r: ("tiny-rgb-16", "a ResNet of 3.5M parameters") for r in ("vqgan-small", "fsq-small", "rvq-small")},
               "scvi": ("tiny-counts", "its zinb likelihood models counts, whole numbers")}


# the largest recipes (80M and 20M parameters): writing and reading their weights and state is most of a
# minute, and that path is the one every other recipe runs; here their config, and one training step
ONE_STEP = {"autoencoder-kl": "autoencoder-kl-small trains and reloads the same network family",
            "celeba64": "resnet trains and reloads the same network family",
            **{f"{r}-small": f"the contract's {r} rows train and reload the structure; autoencoder-kl-small the network"
               for r in ("vqgan", "fsq", "rvq")}}
# the quantizers' full recipes (65M parameters, half a minute to build on 2 busy cores): their config only;
# their -small sibling takes a step with the same loss on the same layout
CONFIG_ONLY = {r: f"{r}-small" for r in ("vqgan", "fsq", "rvq")}


def one_step(recipe: str, data: str):
    """The recipe's config with the data's shape filled in, and its model after one optimizer step on the data
    (its loss finite and every parameter that has a gradient moved)."""
    from vaekit.app.options import apply_options, base_config
    from vaekit.models import build_model
    from vaekit.objectives import build_objective

    # the full recipes' LPIPS term needs torchvision's weights file, not on this machine (test_perceptual.py
    # trains with the term from a generated backbone file)
    cfg = apply_options(base_config(recipe), {"data": data, "perceptual": 0.0}, [])
    x = torch.as_tensor(__import__("numpy").load(data)["x"][:8])
    cfg.model.data_shape = list(x.shape[1:])
    torch.manual_seed(0)
    model = build_model(cfg.model, name=cfg.model.variant)
    before = [p.detach().clone() for p in model.parameters()]
    loss = build_objective(cfg)(model, x).loss
    assert torch.isfinite(loss)
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=1e-3).step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    return cfg, model


# the rest train on the first 96 digits (their classes too): 1797 digits were up to 5 s a recipe, and the recipe's
# config, its training and its reload are what is checked; those whose likelihood is a pmf over the data's
# quantization (categorical256, dlogistic) train on all of scikit-learn's digits, which have 17 known levels
DIGITS_SLICE = 96


def default_recipe_data(expect: dict) -> str:
    """``digits`` where the recipe's likelihood (:func:`expected_config`'s) takes the data's levels (checked below
    to be digits' 17), else ``digits-96``."""
    from vaekit.registry import LIKELIHOODS, accepted_args

    likelihood = expect["model"].get("likelihood", {}).get("name", "auto")
    takes_levels = likelihood != "auto" and "levels" in accepted_args(LIKELIHOODS.get(likelihood))
    return "digits" if takes_levels else f"digits-{DIGITS_SLICE}"


def recipe_data(name: str, folder):
    """A named dataset, ``tiny-rgb-S``: 48 random SxS colour images, ``tiny-counts``: 64 x 12 Poisson counts, or
    ``digits-N``: the first N of scikit-learn's digits with their labels, written to ``folder``."""
    import numpy as np
    if name.startswith("digits-"):
        digits = vaekit.load_data("digits").train
        n = int(name.rsplit("-", 1)[1])
        path = folder / "digits.npz"
        np.savez(path, x=digits.x[:n].numpy(), y=digits.y[:n].numpy())
        return str(path)
    if name == "tiny-counts":
        path = folder / "counts.npy"
        np.save(path, np.random.default_rng(0).poisson(3.0, (64, 12)).astype(np.float32))
        return str(path)
    if not name.startswith("tiny-rgb-"):
        return name
    size = int(name.rsplit("-", 1)[1])
    path = folder / "tiny.npz"
    np.savez(path, x=np.random.default_rng(0).random((48, 3, size, size), dtype=np.float32))
    return str(path)


@pytest.mark.parametrize("recipe", __import__("vaekit.recipes", fromlist=["recipe_names"]).recipe_names())
def test_every_recipe_trains_and_reloads(tmp_path, recipe):
    from vaekit.recipes import load_recipe

    spec = load_recipe(recipe)
    network = spec["model"].get("network", {}).get("name", "mlp")
    assert network in vaekit.NETWORKS, network
    expect = expected_config(spec)
    data = recipe_data(RECIPE_DATA.get(recipe, (default_recipe_data(expect),))[0], tmp_path)
    if recipe in CONFIG_ONLY:
        from vaekit.app.options import apply_options, base_config
        cfg = apply_options(base_config(recipe), {"data": data}, [])
        sibling = base_config(CONFIG_ONLY[recipe])
        assert cfg.model.structure.name == sibling.model.structure.name and cfg.model.network.name == "resnet"
    elif recipe in ONE_STEP:
        cfg, model = one_step(recipe, data)
    else:
        model = vaekit.train(data, recipe=recipe, out=tmp_path / "r", epochs=1, batch_size=512, progress=False)
        cfg = vaekit.open_run(tmp_path / "r").config
    assert cfg.recipe == recipe and cfg.model.variant == spec["model"].get("variant", "vae")
    for section in ("model", "train"):
        saved = getattr(cfg, section)
        for key, value in expect[section].items():
            if key in ("epochs", "batch_size", "perceptual"):  # given to vaekit.train or one_step above
                continue
            if key == "group_optimizers":
                value = {group: Part(**part) for group, part in value.items()}
            elif isinstance(getattr(saved, key), Part):
                value = Part(**value)
                if key == "likelihood" and "levels" not in value.args and "levels" in saved.likelihood.args:
                    assert saved.likelihood.args["levels"] == 17       # filled in from the data: digits' levels
                    value = Part(value.name, {**value.args, "levels": 17})
            assert getattr(saved, key) == value, (section, key)
    assert cfg.model.conditional == expect["model"].get("conditional", False)
    assert cfg.train.objective == Part(**expect["train"].get("objective", {"name": "elbo"}))
    assert cfg.train.optimizer == Part(**expect["train"].get("optimizer", {"name": "adam"}))
    if recipe in ONE_STEP or recipe in CONFIG_ONLY:
        return
    if model.can("likelihood"):
        val_elbo = rows(tmp_path / "r")[0]["val_elbo"]
        # a probability's log is below 0; a density's (continuous Bernoulli, on [0, 1]) may be above
        assert math.isfinite(val_elbo) and (val_elbo < 0 or model.likelihood.levels is None)
    else:  # an autoencoder: the objective's monitored term
        assert math.isfinite(rows(tmp_path / "r")[0]["val_recon"])
    y = torch.tensor([3]) if cfg.model.conditional else None
    loaded = vaekit.load(tmp_path / "r")
    for a, b in zip(loaded.parameters(), model.parameters()):
        assert torch.equal(a, b)
    assert loaded.sample(2, y).shape == ((2, 1, 8, 8) if data == "digits" or "digits.npz" in data
                                         else (2, *cfg.model.data_shape))


def test_recipe_values_match_the_classic_setups():
    from vaekit.recipes import load_recipe

    mlp, conv = load_recipe("mlp"), load_recipe("conv")
    assert mlp["model"]["network"] == {"name": "mlp", "args": {"hidden": [512]}} and mlp["model"]["latent_dim"] == 2
    assert (mlp["train"]["optimizer"]["name"], mlp["train"]["batch_size"], mlp["train"]["epochs"]) == ("adam", 128, 50)
    assert conv["model"]["network"] == {"name": "conv", "args": {"widths": [32, 64], "dense": 16}}
    assert (conv["train"]["optimizer"]["name"], conv["train"]["batch_size"], conv["train"]["epochs"]) == \
        ("rmsprop", 128, 30)
    from vaekit.app.options import base_config  # the recipe on its variant, which sets beta (vaekit/zoo.py)

    assert base_config("beta-vae").train.objective == Part("elbo", {"beta": 4.0})


def test_the_defaults_are_the_mlp_recipe_with_a_16_d_latent():
    """No --recipe: the mlp recipe's network and trainer, but 16 latent dimensions (the quality
    default; benchmarks/vs_pythae_quality.py); the recipe keeps the classic 2-D plane."""
    from vaekit.app.options import base_config

    default, mlp = base_config(None), base_config("mlp")
    assert (default.model.latent_dim, mlp.model.latent_dim) == (16, 2)
    assert default.model.network == mlp.model.network and default.model.likelihood.name == "auto"
    assert (default.train.lr, default.train.batch_size, default.train.epochs) == \
        (mlp.train.lr, mlp.train.batch_size, mlp.train.epochs)


def test_layer_sizes_as_text_or_list(tmp_path):
    a = vaekit.train("digits", out=tmp_path / "a", epochs=1, hidden="32,16", progress=False)
    assert vaekit.open_run(tmp_path / "a").config.model.network.args["hidden"] == [32, 16]


def test_a_failed_attempt_does_not_block_the_next(tmp_path, monkeypatch):
    run = tmp_path / "r"
    real_call = elbo_module.ELBO.__call__

    calls = []

    def fail(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the preflight check before anything is written passes
            return real_call(self, *args, **kwargs)
        raise VaekitError("simulated failure in the first epoch")

    monkeypatch.setattr(elbo_module.ELBO, "__call__", fail)
    with pytest.raises(VaekitError, match="simulated"):
        vaekit.train("digits", out=run, epochs=1, **SMALL)
    monkeypatch.setattr(elbo_module.ELBO, "__call__", real_call)
    assert (run / "config.json").exists() and not (run / "model.safetensors").exists()
    vaekit.train("digits", out=run, epochs=1, **SMALL)  # nothing was saved, so no --overwrite is needed
    assert (run / "model.safetensors").exists()


def test_resume_needs_epochs_left(tmp_path):
    vaekit.train("digits", out=tmp_path / "r", epochs=2, **SMALL)
    with pytest.raises(VaekitError, match="already trained 2 epochs; pass --epochs above 2"):
        vaekit.train(out=tmp_path / "r", resume=True, epochs=2, progress=False)
    assert vaekit.open_run(tmp_path / "r").config.train.epochs == 2


def test_file_runs_work_from_any_directory(tmp_path, monkeypatch):
    import numpy as np

    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.random.default_rng(0).random((120, 1, 6, 6)).astype("float32"))
    monkeypatch.chdir(tmp_path)
    vaekit.train("data/x.npy", out="runs/a", epochs=1, **SMALL)
    monkeypatch.chdir(tmp_path / "data")
    from vaekit.app.evaluations import evaluate_run

    assert evaluate_run(tmp_path / "runs" / "a")["n"] == 24  # the saved source is absolute


def test_a_foreign_config_json_is_not_a_run(tmp_path):
    (tmp_path / "config.json").write_text('{"a": 1}')
    with pytest.raises(VaekitError, match="is not a vaekit run config"):
        vaekit.load(tmp_path)


def test_optimizers_use_the_fused_kernel_unless_told_otherwise():
    """Adam's fused kernel where torch has one; a user's own implementation choice is kept."""
    from vaekit.config import TrainConfig
    from vaekit.train.optimizers import make_optimizers

    params = [torch.nn.Parameter(torch.randn(3, 2))]
    tc = TrainConfig()
    assert make_optimizers({"main": params}, tc)["main"].defaults["fused"] is True
    tc = TrainConfig(optimizer=Part("adam", {"foreach": False}))
    opt = make_optimizers({"main": params}, tc)["main"]
    assert not opt.defaults["fused"] and opt.defaults["foreach"] is False
    tc = TrainConfig(optimizer=Part("rmsprop", {}))          # vaekit's own function: no fused option
    assert isinstance(make_optimizers({"main": params}, tc)["main"], torch.optim.RMSprop)
