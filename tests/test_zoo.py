"""vaekit/zoo.py: the table of variants, one home for each default, and switching --model."""
from __future__ import annotations

import subprocess
import sys

import pytest

import vaekit  # noqa: F401  (registers every part)
from vaekit.app.options import apply_options, base_config, composition
from vaekit.config import RunConfig
from vaekit.models.build import structure_options
from vaekit.recipes import load_recipe, recipe_names
from vaekit.registry import (LIKELIHOODS, MODELS, OBJECTIVES, OPTIMIZERS, POSTERIORS, PRIORS, VARIANTS,
                             accepted_args)
from vaekit.zoo import ZOO

PARTS = {("model", "structure"): MODELS, ("model", "posterior"): POSTERIORS, ("model", "prior"): PRIORS,
         ("model", "likelihood"): LIKELIHOODS, ("train", "objective"): OBJECTIVES, ("train", "optimizer"): OPTIMIZERS}


def test_the_zoo_table_is_the_registry_and_needs_no_torch():
    assert len(ZOO) == 41 and sorted(v.name for v in ZOO) == VARIANTS.names()
    code = "import sys, vaekit.zoo; assert 'torch' not in sys.modules, 'vaekit.zoo imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _defaults(registry, name: str) -> dict:
    part = registry.get(name)
    target = structure_options(part) if registry is MODELS else part
    return {k: p.default for k, p in accepted_args(target).items() if p.default is not p.empty}


def _restated(config: dict, reference: dict) -> list:
    """The part args in ``config`` that equal their constructor's default or ``reference``'s value
    (the variant's), and its other values that equal ``reference``'s."""
    found = []
    for section, values in config.items():
        if not isinstance(values, dict):
            continue
        ref = reference.get(section, {})
        for key, value in values.items():
            if (section, key) in PARTS and isinstance(value, dict):
                ref_part = ref.get(key) if isinstance(ref.get(key), dict) else {}
                ref_args = ref_part.get("args", {}) if ref_part.get("name") == value["name"] else {}
                defaults = {**_defaults(PARTS[section, key], value["name"]), **ref_args}
                found += [f"{section}.{key}.args.{a}={v!r}" for a, v in value.get("args", {}).items()
                          if a in defaults and _same(v, defaults[a])]
                if ref_part.get("name") == value["name"] and not value.get("args"):
                    found.append(f"{section}.{key} (its variant's)")
            elif key != "variant" and key in ref and _same(value, ref[key]):
                found.append(f"{section}.{key}={value!r}")
    return found


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return type(a) is type(b) and a == b or {type(a), type(b)} == {int, float} and a == b


@pytest.mark.parametrize("name", VARIANTS.names())
def test_a_variant_names_only_what_differs_from_its_parts_defaults(name):
    """A part's default (a paper's value) lives once, in its constructor's signature."""
    assert not _restated(VARIANTS.get(name).config, {}), f"variant {name} restates defaults"


@pytest.mark.parametrize("recipe", recipe_names())
def test_a_recipe_restates_neither_its_variant_nor_a_default(recipe):
    spec = load_recipe(recipe)
    variant = VARIANTS.get(spec["model"].get("variant", "vae")).config
    assert not _restated({k: spec[k] for k in ("model", "train") if k in spec}, variant), recipe


def test_the_composition_holds_every_key_a_variant_sets():
    keys = composition()
    assert {"structure", "posterior", "prior", "likelihood", "latent_dim", "conditional"} <= keys["model"]
    assert {"objective", "group_optimizers", "warmup_epochs"} <= keys["train"]


@pytest.mark.parametrize("source", [v for v in VARIANTS.names() if VARIANTS.get(v).config])
def test_switching_model_resets_every_key_the_last_variant_set(source):
    """--model B after a variant A (or A's recipe) is B alone: nothing A set survives the switch."""
    starts = [apply_options(RunConfig(), {"model": source})]
    starts += [base_config(r) for r in recipe_names() if load_recipe(r)["model"].get("variant") == source]
    for target in VARIANTS.names():
        if target == source:
            continue
        alone = apply_options(RunConfig(), {"model": target}).to_dict()
        for start in starts:
            switched = apply_options(start, {"model": target}).to_dict()
            for section, keys in VARIANTS.get(source).config.items():
                for key in keys:
                    assert switched[section][key] == alone[section][key], (
                        f"{source} -> {target}: {section}.{key} kept {switched[section][key]!r}")
