"""Named, ready configs: one JSON file each in this folder (``vaekit train --recipe NAME``)."""
from __future__ import annotations

import json
from importlib import resources

from ..errors import VaekitError


def recipe_names() -> list:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".json"))


def load_recipe(name: str) -> dict:
    """The recipe's partial config: {"description", "model": {...}, "train": {...}}."""
    if name not in recipe_names():
        raise VaekitError(f"unknown recipe {name!r}; choose one of: {', '.join(recipe_names())}")
    return json.loads(resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
