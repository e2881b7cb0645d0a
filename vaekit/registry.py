"""Name -> class registries for the parts a model is composed of, and the zoo of variants.

Configs and the command line refer to parts by name (``"conv"``, ``"bernoulli"``,
``"elbo"``); the name is stored in a run's config.json so loading needs no if/elif
chains. Adding a part is one class plus one ``@REGISTRY.register("name")`` line.

:meth:`Registry.build` constructs a part from its config ``{name, args}``: the args are
checked against the constructor's signature first, so a misspelt option is a clear error,
while a bug inside a constructor still surfaces as the bug it is.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, TypeVar

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

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def build(self, name: str, args: Dict[str, Any], *context, where: str = "", **context_kw):
        """``cls(*context, **context_kw, **args)`` after checking ``args`` against its signature.

        ``context`` are what the caller supplies (shapes, sizes); of ``context_kw`` only those
        the constructor names are passed. ``args`` are the user's.
        """
        cls = self.get(name)
        check_args(cls, args, f"{where or self.kind} {name!r}", reserved=context_kw)
        accepted = accepted_args(cls)
        return cls(*context, **{k: v for k, v in context_kw.items() if k in accepted}, **args)


def accepted_args(fn) -> Dict[str, inspect.Parameter]:
    """The keyword arguments ``fn`` (a class or function) accepts, by name."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    params = list(inspect.signature(target).parameters.values())
    if inspect.isclass(fn):
        params = params[1:]  # self
    return {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_args(fn, args: Dict[str, Any], what: str, reserved: Iterable[str] = ()) -> None:
    """Raise a VaekitError naming the unknown keys of ``args`` and the ones ``fn`` takes."""
    if not isinstance(args, dict):
        raise VaekitError(f"the args of {what} must be a mapping of option names to values, got {args!r}")
    params = accepted_args(fn)
    if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
        return
    reserved = set(reserved)
    options = sorted(n for n in params if n not in reserved and not _is_context(params[n]))
    unknown = sorted(set(args) - set(options))
    if unknown:
        raise VaekitError(f"{what} has no option {', '.join(unknown)}; its options are: "
                          f"{', '.join(options) or '(none)'}")
    for name, value in args.items():
        _check_type(params[name], value, f"option {name} of {what}")


def _check_type(param: inspect.Parameter, value, what: str) -> None:
    """A value must have the kind of its default: an integer, a number, a flag or a list.

    An integer default annotated as a float (``weight_decay: float = 0``) takes any number.
    Defaults of other kinds (strings such as sigma="1.0" that also take numbers, None) are
    left to the constructor.
    """
    default = param.default
    if isinstance(default, int) and "float" in str(param.annotation):
        default = float(default)
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, (list, tuple)):
        ok, kind = isinstance(value, (list, tuple)), f"a list like {list(default)}"
    else:
        return
    if not ok:
        raise VaekitError(f"{what} must be {kind}, got {value!r}")


def _is_context(p: inspect.Parameter) -> bool:
    """Positional parameters without a default are supplied by vaekit (shapes, sizes), not by users."""
    return p.default is p.empty


@dataclass(frozen=True)
class Variant:
    """An entry of the model zoo: a named composition of parts (``vaekit train --model NAME``).

    ``config`` is a partial run config (``{"model": {...}, "train": {...}}``) applied on top of
    the defaults; a recipe of the same name adds the paper's training settings.
    """

    name: str
    description: str
    paper: str
    config: Dict[str, Any] = field(default_factory=dict)


class VariantRegistry(Registry):
    def add(self, name: str, description: str, paper: str, **config) -> Variant:
        variant = Variant(name, description, paper, config)
        self.register(name)(variant)
        return variant


MODELS = Registry("model structure")      # how the parts are wired: vae, ladder, vqvae, ...
NETWORKS = Registry("network")            # name -> (Encoder class, Decoder class)
POSTERIORS = Registry("posterior")
PRIORS = Registry("prior")
LIKELIHOODS = Registry("likelihood")
OBJECTIVES = Registry("objective")
OPTIMIZERS = Registry("optimizer")
METRICS = Registry("metric")
PLOTS = Registry("plot")
SAMPLERS = Registry("sampler")           # densities fitted to the codes after training: gmm, maf, ...
VARIANTS = VariantRegistry("model")       # the zoo: --model NAME
