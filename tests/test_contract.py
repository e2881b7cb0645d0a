"""The contract every registered part keeps: one table of shared checks, rows from the registries.

Rows are generated at collection time from ``vaekit.registry``: every zoo variant (VARIANTS),
every model structure (MODELS), prior, posterior, likelihood, network and objective. A part
registered tomorrow becomes a row here without an edit to this file. Each row is a small model
built from a config:

- a VARIANTS row is the variant's own composition (``--model NAME``);
- a PRIORS / POSTERIORS / LIKELIHOODS / NETWORKS / OBJECTIVES row swaps that one part into
  the default ``vae`` config; where the default cannot host it (building the model or calling
  the objective raises a VaekitError naming the need, e.g. an objective that needs a
  discriminator) the row uses the config of the variant that uses the part;
- a MODELS row uses the variant built on that structure (its objective and optimizers belong
  with it), or the default config with the structure swapped in when no variant uses it.

Shared checks per row: shapes of the contract, a finite loss, gradients reach every parameter
group, save/load round trip, determinism under a seed, misspelt args refused. Per zoo variant,
end to end: exact resume through ``vaekit.train``, and train + evaluate through the CLI.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from safetensors.torch import load_file

import vaekit  # noqa: F401  (registers every part before the rows are collected)
from vaekit import rundir
from vaekit.app import options as options_mod
from vaekit.app.options import OPTIONS, apply_options, base_config, set_path
from vaekit.config import RunConfig
from vaekit.errors import VaekitError
from vaekit.models import build_model
from vaekit.contract.bounds import elbo_terms, log_importance_weights
from vaekit.registry import (DISCRIMINATORS, LIKELIHOODS, MODELS, NETWORKS, OBJECTIVES, OPTIMIZERS, PLOTS,
                             POSTERIORS, PRIORS, VARIANTS)
from vaekit.train import build_objective

from conftest import LATENT_DIM, NETWORK_SMALL, SPEED, run_cli, variant_options

# -- knobs: the only per-part knowledge in this file; a new part needs none of it ------------
# (the small sizes, LATENT_DIM, NETWORK_SMALL and SPEED, live in conftest.py: zoo_run uses them too)
RESNET = "resnet"  # the network every variant is also tried on: a "resnet:VARIANT" row each
MAP = "resnet-map"  # the resnet's latent map (--latent-channels): a "resnet-map:VARIANT" row for the quantizers
MAP_VARIANTS = ("vqvae", "vqgan", "fsq", "rvq")  # (the Gaussian vae's latent map: tests/test_spatial_latents.py)
DEFAULT_VARIANT = "vae"
BATCH = 32
# where each kind of part sits in a config (the registry name at PATH, its args beside it)
PART_PATHS = {
    "model": "model.structure.name",
    "prior": "model.prior.name",
    "posterior": "model.posterior.name",
    "likelihood": "model.likelihood.name",
    "network": "model.network.name",
    "discriminator": "model.discriminator.name",
    "objective": "train.objective.name",
}
REGISTRIES = {"model": MODELS, "prior": PRIORS, "posterior": POSTERIORS, "likelihood": LIKELIHOODS,
              "network": NETWORKS, "discriminator": DISCRIMINATORS, "objective": OBJECTIVES}


@dataclass(frozen=True)
class Row:
    kind: str   # "variant", "resnet" (the variant on the resnet network) or a key of PART_PATHS
    name: str   # its registry name

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


ROWS = [Row("variant", n) for n in VARIANTS.names()] + [Row(RESNET, n) for n in VARIANTS.names()] + [
    Row(MAP, n) for n in MAP_VARIANTS] + [Row(kind, n) for kind, registry in REGISTRIES.items() for n in registry.names()]
ROW_IDS = [r.id for r in ROWS]


# -- helpers --------------------------------------------------------------------------------
def get_path(d: dict, path: str, missing=KeyError):
    for key in path.split("."):
        if not isinstance(d, dict) or key not in d:
            if missing is KeyError:
                raise KeyError(path)
            return missing
        d = d[key]
    return d


@lru_cache(maxsize=None)
def variant_dict(name: str) -> dict:
    """The full config dict of zoo variant ``name`` (defaults included)."""
    return apply_options(base_config(), {"model": name}).to_dict()


def variant_using(kind: str, name: str):
    """A zoo variant whose composition uses part ``name`` (the one of the same name first), or None."""
    names = sorted(VARIANTS.names(), key=lambda v: (v != name, v))
    return next((v for v in names if get_path(variant_dict(v), PART_PATHS[kind]) == name), None)


def small_config(variant: str, swap=None, info=None) -> RunConfig:
    """Variant ``variant`` (optionally with one part swapped in: ``(path, name)``), small, for digits."""
    d = copy.deepcopy(variant_dict(variant))
    if swap is not None:
        set_path(d, swap[0], swap[1], "the contract test")
    cfg = RunConfig.from_dict(d)
    small = {"latent_dim": LATENT_DIM, **NETWORK_SMALL.get(cfg.model.network.name, {})}
    cfg = apply_options(cfg, small, sets=SPEED.get(variant, ()))
    cfg.model.data_shape = list(info.shape)
    cfg.model.num_classes = info.num_classes
    return cfg


class Setup:
    """A row's config, built small, with a fixed digits batch."""

    def __init__(self, row: Row, cfg: RunConfig, x, y, note: str):
        self.row, self.cfg, self.x, self.y, self.note = row, cfg, x, y, note

    def build(self, seed: int = 0):
        torch.manual_seed(seed)
        return build_model(copy.deepcopy(self.cfg.model), name=self.cfg.model.variant)

    def objective(self):
        return build_objective(self.cfg)

    def loss(self, model, seed: int = 123):
        torch.manual_seed(seed)
        return self.objective()(model, self.x, self.y)


def _try(cfg: RunConfig, x, y):
    """None if ``cfg`` builds and its objective runs on the batch, else the VaekitError."""
    try:
        torch.manual_seed(0)
        model = build_model(copy.deepcopy(cfg.model))
        build_objective(cfg)(model, x, y)
    except VaekitError as e:
        return e
    return None


_SETUPS: dict = {}


def setup_for(row: Row, digits) -> Setup:
    if row.id in _SETUPS:
        return _SETUPS[row.id]
    x, y = digits.train.x[:BATCH], digits.train.y[:BATCH]
    info = digits.info
    if row.kind == "variant":
        setup = Setup(row, small_config(row.name, info=info), x, y, f"variant {row.name}")
    elif row.kind == RESNET:
        cfg = small_config(row.name, swap=(PART_PATHS["network"], RESNET), info=info)
        error = _try(cfg, x, y)
        if error is not None:  # a variant whose parts cannot use it says why, in one line
            assert len(str(error).strip().splitlines()) == 1, f"{row.id}: {error}"
            pytest.skip(f"{row.name} cannot use the {RESNET} network: {error}")
        setup = Setup(row, cfg, x, y, f"variant {row.name} on the {RESNET} network")
    elif row.kind == MAP:
        cfg = small_config(row.name, swap=(PART_PATHS["network"], RESNET), info=info)
        cfg = apply_options(cfg, {"latent_channels": LATENT_DIM})
        cfg.model.structure.args.pop("code_dim", None)  # on a map the codes have the map's channels
        setup = Setup(row, cfg, x, y, f"variant {row.name} on the {RESNET} network's latent map")
    else:
        path = PART_PATHS[row.kind]
        user = variant_using(row.kind, row.name)
        if row.kind == "model" and user is not None:
            # a structure comes with its objective and optimizers: use the variant built on it
            setup = Setup(row, small_config(user, info=info), x, y, f"variant {user}")
        else:
            cfg = small_config(DEFAULT_VARIANT, swap=(path, row.name), info=info)
            error = _try(cfg, x, y)
            if error is not None and user is not None and user != DEFAULT_VARIANT:
                # the default model cannot host it (it says why): the variant that uses it covers it
                setup = Setup(row, small_config(user, info=info), x, y,
                              f"variant {user} (the {DEFAULT_VARIANT} config refused it: {error})")
            elif error is not None:
                raise AssertionError(f"{row.id}: no registered config can use it; with {path}={row.name} "
                                     f"in the {DEFAULT_VARIANT} config: {error}")
            else:
                setup = Setup(row, cfg, x, y, f"{DEFAULT_VARIANT} with {path}={row.name}")
    _SETUPS[row.id] = setup
    return setup


@pytest.fixture(scope="module")
def digits():
    return vaekit.load_data("digits")


@pytest.fixture(params=ROWS, ids=ROW_IDS)
def setup(request, digits) -> Setup:
    return setup_for(request.param, digits)


def _finite(t) -> bool:
    return bool(torch.isfinite(torch.as_tensor(t)).all())


# -- the table ------------------------------------------------------------------------------
def test_every_registered_part_is_a_row():
    for kind, registry in REGISTRIES.items():
        assert {r.name for r in ROWS if r.kind == kind} == set(registry.names()), kind
    assert {r.name for r in ROWS if r.kind == "variant"} == set(VARIANTS.names())
    assert DEFAULT_VARIANT in VARIANTS  # the config every part is swapped into
    # a new kind of part (a new Registry in vaekit.registry) must join the table too
    import vaekit.registry as registry_module

    not_parts = {id(OPTIMIZERS), id(registry_module.METRICS), id(registry_module.PLOTS), id(VARIANTS),
                 id(registry_module.SAMPLERS)}  # samplers are fitted after training: tests/test_samplers.py
    for name, value in vars(registry_module).items():
        if isinstance(value, registry_module.Registry) and id(value) not in not_parts:
            assert any(value is r for r in REGISTRIES.values()), f"registry {name} has no rows in the contract table"


def test_shapes(setup):
    """forward -> ModelOutput: px over whole examples, per-layer q and prior, shared bounds, samples."""
    model = setup.build()
    x, y, b = setup.x, setup.y, setup.x.shape[0]
    torch.manual_seed(1)
    out = model(x, y)
    assert out.px.log_prob(x).shape == (b,), setup.note
    assert _finite(out.px.log_prob(x))
    assert len(out.latents) >= 1
    for i, layer in enumerate(out.latents):
        assert layer.z.shape[0] == b, (i, tuple(layer.z.shape))
        assert layer.q.log_prob(layer.z).shape == (b,), f"layer {i}: q.log_prob {layer.q.log_prob(layer.z).shape}"
        assert layer.prior.log_prob(layer.z).shape == (b,), \
            f"layer {i}: prior.log_prob {layer.prior.log_prob(layer.z).shape}"
        assert _finite(layer.q.log_prob(layer.z)) and _finite(layer.prior.log_prob(layer.z)), i
    t = elbo_terms(out, x)
    assert len(t.kls) == len(out.latents)
    for name, v in [("recon", t.recon), ("kl", t.kl), ("elbo", t.elbo)] + [(f"kl_{i}", k) for i, k in enumerate(t.kls)]:
        assert v.shape == (b,), (name, tuple(v.shape))
        assert _finite(v), name
    torch.testing.assert_close(t.elbo, -(t.recon + t.kl))
    torch.testing.assert_close(t.kl, torch.stack(t.kls).sum(0))
    log_w = log_importance_weights(model, x, y, k=3)
    assert log_w.shape == (3, b) and _finite(log_w)
    if model.can("sample"):
        c = y[:5] if model.num_classes else None
        samples = model.sample(5, c)
        assert samples.shape == (5, *model.data_shape) and _finite(samples)
    else:
        with pytest.raises(VaekitError, match="does not apply"):
            model.sample(5)


def test_finite_loss(setup):
    """The objective gives one finite scalar per optimizer, finite terms, and the metric it monitors."""
    model = setup.build()
    objective = setup.objective()
    out = setup.loss(model)
    assert out.losses and "main" in out.losses, sorted(out.losses)
    for name, loss in out.losses.items():
        assert torch.is_tensor(loss) and loss.dim() == 0, (name, getattr(loss, "shape", loss))
        assert _finite(loss), (name, float(loss))
    assert out.terms
    for name, term in out.terms.items():
        assert torch.as_tensor(term).dim() == 0 and _finite(term), (name, term)
    monitor, mode = objective.monitor
    assert monitor in out.terms and mode in ("min", "max"), (objective.monitor, sorted(out.terms))


def test_gradients_reach_every_parameter_group(setup):
    """Every trainable parameter is in exactly one group; each group's own loss reaches it."""
    model = setup.build()
    out = setup.loss(model)   # a forward first: lazy layers have their shapes now
    groups = model.parameter_groups()
    names = {id(p): n for n, p in model.named_parameters()}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    counts = {}
    for params in groups.values():
        for p in params:
            assert id(p) in names, "a parameter group holds a tensor that is not a parameter of the model"
            counts[id(p)] = counts.get(id(p), 0) + 1
    missing = sorted(names[i] for i in trainable if i not in counts)
    twice = sorted(names[i] for i, n in counts.items() if n > 1)
    assert not missing, f"trainable parameters in no group: {missing}"
    assert not twice, f"parameters in more than one group: {twice}"
    # the trainer steps one optimizer per group on the loss of that name: one loss per group
    assert set(out.losses) == set(groups), f"losses {sorted(out.losses)} vs parameter groups {sorted(groups)}"
    for group, params in groups.items():
        params = [p for p in params if p.requires_grad]
        assert params, f"group {group!r} is empty"
        grads = torch.autograd.grad(out.losses[group], params, retain_graph=True, allow_unused=True)
        without = [names[id(p)] for p, g in zip(params, grads) if g is None or not bool((g != 0).any())]
        for p, g in zip(params, grads):
            assert g is None or _finite(g), f"non-finite gradient of {names[id(p)]}"
        assert len(without) * 2 < len(params), (
            f"group {group!r}: {len(without)} of {len(params)} parameters get no gradient from the "
            f"{group!r} loss: {without}")


def test_save_load_round_trip(setup, tmp_path):
    model = setup.build(seed=0)
    setup.loss(model)            # materialize lazy layers, if any
    fresh = setup.build(seed=1)
    setup.loss(fresh)
    before = fresh.state_dict()
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items() if v.is_floating_point()), \
        "two seeds built identical models: the round trip would prove nothing"
    rundir.save_weights(tmp_path / "w.safetensors", model)
    rundir.load_weights(tmp_path / "w.safetensors", fresh)
    a, b = model.state_dict(), fresh.state_dict()
    assert set(a) == set(b)
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"tensors differ after the round trip: {differ}"
    model.eval()
    fresh.eval()
    with torch.no_grad():
        torch.manual_seed(7)
        mean_a = model(setup.x, setup.y).px.mean
        torch.manual_seed(7)
        mean_b = fresh(setup.x, setup.y).px.mean
    assert torch.equal(mean_a, mean_b)


def test_determinism_under_a_seed(setup):
    a, b, other = setup.build(seed=5), setup.build(seed=5), setup.build(seed=6)
    la, lb, lo = setup.loss(a, seed=11), setup.loss(b, seed=11), setup.loss(other, seed=11)
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa), "same seed, different weights"
    for name in la.losses:
        assert torch.equal(la.losses[name], lb.losses[name]), f"same seed, different {name} loss"
    for name in la.terms:
        assert torch.equal(torch.as_tensor(la.terms[name]), torch.as_tensor(lb.terms[name])), name
    assert not torch.equal(la.losses["main"], lo.losses["main"]), "another seed gave the same loss"


def test_misspelt_args_are_refused(setup):
    """A part's args are checked against its constructor: a misspelt option is a VaekitError naming it.

    For a zoo variant every part of its config is tried: a structure that does not use a part
    (its own priors, say) must refuse a config that sets one, not train silently without it.
    """
    kinds = [setup.row.kind] if setup.row.kind not in ("variant", RESNET, MAP) else list(PART_PATHS)
    accepted = []
    for kind in kinds:
        path = PART_PATHS[kind].rsplit(".", 1)[0] + ".args.not_an_option"
        part_name = get_path(setup.cfg.to_dict(), PART_PATHS[kind])
        if kind == "likelihood" and part_name == "auto":
            continue  # resolved at build time; the resolved likelihood has its own row
        cfg = apply_options(setup.cfg, {}, sets=[f"{path}=1"])
        try:
            build_objective(cfg) if kind == "objective" else build_model(cfg.model)
        except VaekitError as e:
            message = str(e)
            assert "not_an_option" in message and "options are" in message or kind in message, message
        else:
            accepted.append(f"--set {path}=1 ({kind} {part_name!r})")
    assert not accepted, (f"{setup.note}: accepted silently, so config.json names parts or args the model "
                          f"does not have: {accepted}")


# -- end to end, per zoo variant ------------------------------------------------------------
def _metric_rows(run: Path) -> list:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rundir.read_metrics(run / rundir.METRICS)]


@pytest.mark.parametrize("name", VARIANTS.names())
def test_exact_resume(name, zoo_run, tmp_path):
    """1 epoch (zoo_run's, through the CLI), then resume to 2 == 2 epochs straight through vaekit.train:
    bit for bit weights, same metrics."""
    common = dict(model=name, batch_size=256, progress=False, sets=SPEED.get(name, []), **variant_options(name))
    shutil.copytree(zoo_run(name), tmp_path / "resumed")
    vaekit.train(out=tmp_path / "resumed", resume=True, epochs=2, progress=False)
    vaekit.train("digits", out=tmp_path / "straight", epochs=2, **common)
    a = load_file(str(tmp_path / "resumed" / rundir.WEIGHTS))
    b = load_file(str(tmp_path / "straight" / rundir.WEIGHTS))
    assert set(a) == set(b)
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"weights differ after resume: {differ}"
    rows_a, rows_b = _metric_rows(tmp_path / "resumed"), _metric_rows(tmp_path / "straight")
    assert [r["epoch"] for r in rows_b] == [1, 2]
    assert rows_a == rows_b


def test_models_json_lists_the_zoo(capsys):
    code, out, err = run_cli(["models", "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert sorted(r["name"] for r in rows) == VARIANTS.names()
    for r in rows:
        assert isinstance(r["description"], str) and r["description"].strip(), r
        assert isinstance(r["paper"], str) and r["paper"].strip(), r


@pytest.mark.parametrize("name", VARIANTS.names())
def test_cli_trains_and_evaluates(name, zoo_run, tmp_path, capsys):
    run = zoo_run(name)   # trained for 1 epoch through `vaekit train` (conftest.py), shared with other files
    assert json.loads((run / rundir.CONFIG).read_text())["model"]["variant"] == name
    code, out, err = run_cli(["evaluate", run, "--json"], capsys)
    if vaekit.load(run).can("likelihood"):
        assert code == 0, err
        result = json.loads(out)
        assert math.isfinite(result["elbo"]), result
        assert result["elbo"] == pytest.approx(-(result["recon"] + result["kl"]), rel=1e-6)
    else:  # the default metrics skip the ELBO; asked for by name, it says why in one line
        assert code == 0 and "elbo" not in json.loads(out), err
        code, _, err = run_cli(["evaluate", run, "--metrics", "elbo"], capsys)
        assert code != 0 and "does not apply" in err, err
    # every other command works, or says in one line why it does not apply to this model
    model = vaekit.load(run)
    label = ["--label", "0"] if model.num_classes else []
    commands = {
        "sample": (["sample", run, "--n", "4", "--npy", tmp_path / "s.npy", *label], "sample"),
        "reconstruct": (["reconstruct", run, "--n", "4", "--npy", tmp_path / "r.npy"], None),
        "encode": (["encode", run, "--out", tmp_path / "z.npy"], "encode"),
        "encode --variance": (["encode", run, "--out", tmp_path / "v.npy", "--variance"], "posterior_variance"),
        # --n 3: a 3 x 3 manifold, 3 steps a traversal row (rendering the default 15 x 15 is tests/test_plots.py's)
        **{f"plot {kind}": (["plot", run, kind, "--n", "3", "--out", tmp_path / f"{kind}.png"], None)
           for kind in PLOTS.names()},
    }
    for what, (args, capability) in commands.items():
        code, _, err = run_cli(args, capsys)
        plot = PLOTS.get(args[2]) if args[0] == "plot" else None
        applies = model.can(capability) if capability else (plot is None or plot.applies_to(model) is None)
        if applies:
            assert code == 0, f"{what}: {err}"
        else:
            assert code == 2 and "does not apply" in err and len(err.strip().splitlines()) == 1, f"{what}: {err}"
    arrays = {p.name: np.load(p) for p in tmp_path.glob("*.npy")}
    assert all(np.isfinite(a).all() for a in arrays.values()), sorted(arrays)
    if model.can("sample"):
        assert arrays["s.npy"].shape == (4, 1, 8, 8)


# -- the option table -----------------------------------------------------------------------
NAME_REGISTRIES = {"model.variant": VARIANTS, "model.network.name": NETWORKS, "model.posterior.name": POSTERIORS,
                   "model.prior.name": PRIORS, "model.likelihood.name": LIKELIHOODS,
                   "train.objective.name": OBJECTIVES, "train.optimizer.name": OPTIMIZERS}
STR_SAMPLES = {"sigma": "0.5", "activation": "tanh", "device": "cpu", "data": "fashion-mnist", "data_dir": "/tmp/idx",
               "label_column": "label"}


PARSED_SAMPLES = {"image_size": "16x8", "channels": 3, "augment": "flip,crop", "log": "tensorboard,mlflow"}  # else sizes: 16,8


def sample_value(option, default):
    """A valid value for ``option`` that differs from the default config's."""
    if option.path in NAME_REGISTRIES:
        names = NAME_REGISTRIES[option.path].names()
        return next((n for n in names if n != default), default)
    if option.parse is not None:
        return PARSED_SAMPLES.get(option.name, "16,8")
    if option.type is bool:
        return not default
    if option.type is int:
        return 3 if default != 3 else 4
    if option.type is float:
        return 0.25 if default != 0.25 else 0.5
    return STR_SAMPLES.get(option.name, "x")


def test_every_option_is_a_cli_flag_and_a_train_keyword():
    import inspect

    from vaekit.app.cli import app

    params = {p.name: p for p in typer.main.get_command(app).commands["train"].params}
    type_names = {int: "integer", float: "float", str: "text"}
    for option in OPTIONS:
        assert option.name in params, f"{option.flag} is not a flag of `vaekit train`"
        p = params[option.name]
        assert option.flag in p.opts, (option.flag, p.opts)
        if option.type is bool:
            assert p.is_flag and f"--no-{option.flag[2:]}" in p.secondary_opts, (option.flag, p.secondary_opts)
        else:
            assert not getattr(p, "is_flag", False), option.flag
        descriptor = getattr(p, "type_descriptor", None)  # typer >= 0.25 builds the click type lazily
        if descriptor is not None:
            assert descriptor.annotation is option.type, (option.flag, descriptor.annotation)
        else:
            assert getattr(p.type, "name", None) in (type_names.get(option.type), "boolean"), (option.flag, p.type)
    signature = inspect.signature(vaekit.train).parameters
    assert any(p.kind == p.VAR_KEYWORD for p in signature.values())
    own = {n for n, p in signature.items() if p.kind != p.VAR_KEYWORD}
    for option in OPTIONS:
        # a keyword vaekit.train takes: its own parameter, or one its **options hands to apply_options
        assert option.name in own or option.name in options_mod.BY_NAME
    with pytest.raises(VaekitError, match="latentdim.*known options"):
        vaekit.train("digits", latentdim=3)


@pytest.mark.parametrize("option", OPTIONS, ids=[o.name for o in OPTIONS])
def test_each_option_sets_its_config_path(option):
    base = base_config()
    default = get_path(base.to_dict(), option.path, missing=None)
    value = sample_value(option, default)
    cfg = apply_options(base, {option.name: value})
    expected = option.parse(value, option.flag) if option.parse else value
    got = get_path(cfg.to_dict(), option.path)
    assert got == expected, (option.name, got, expected)
    if value != default:  # a registry with one name has no other value to choose
        assert got != default, (option.name, got, default)
    # the flag spelling reaches the same path through the CLI's table
    assert options_mod.BY_NAME[option.name] is option


def test_set_reaches_part_args_and_misspelt_args_name_the_choices(digits):
    cfg = apply_options(base_config(), {"model": "vamp", "hidden": [16]}, sets=["model.prior.args.components=7"])
    assert cfg.model.prior.name == "vamp" and cfg.model.prior.args == {"components": 7}
    cfg.model.data_shape, cfg.model.num_classes = list(digits.info.shape), digits.info.num_classes
    model = build_model(cfg.model)
    assert model.prior.pseudo_inputs.shape[0] == 7

    bad = apply_options(base_config(), {"model": "vamp", "hidden": [16]}, sets=["model.prior.args.componets=7"])
    bad.model.data_shape, bad.model.num_classes = list(digits.info.shape), digits.info.num_classes
    with pytest.raises(VaekitError) as e:
        build_model(bad.model)
    message = str(e.value)
    assert "componets" in message and "components" in message, message
