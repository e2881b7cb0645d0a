"""Name -> class registries for the parts a model is composed of.

Configs and the command line refer to parts by name (``"conv"``, ``"bernoulli"``,
``"elbo"``); the name is stored in a run's config.json so loading needs no if/elif
chains. Adding a variant is one class plus one ``@REGISTRY.register("name")`` line.
"""
from __future__ import annotations

from typing import Callable, Dict, TypeVar

from .errors import VaekitError

T = TypeVar("T")


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, object] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return wrap

    def get(self, name: str):
        if name not in self._items:
            known = ", ".join(sorted(self._items))
            raise VaekitError(f"unknown {self.kind} {name!r}; choose one of: {known}")
        return self._items[name]

    def names(self) -> list:
        return sorted(self._items)


NETWORKS = Registry("network")  # name -> (Encoder class, Decoder class)
POSTERIORS = Registry("posterior")
PRIORS = Registry("prior")
LIKELIHOODS = Registry("likelihood")
OBJECTIVES = Registry("objective")
OPTIMIZERS = Registry("optimizer")
