"""Name -> class registries for the parts a model is composed of, and the zoo of variants.

Configs and the command line refer to parts by name (``"conv"``, ``"bernoulli"``,
``"elbo"``); the name is stored in a run's config.json so loading needs no if/elif
chains. Adding a part is one class plus one ``@REGISTRY.register("name")`` line; the zoo
of variants composed from the parts is the table in :mod:`vaekit.zoo`.

:meth:`Registry.build` constructs a part from its config ``{name, args}``: the args are
checked against the constructor's signature first, so a misspelt option is a clear error,
while a bug inside a constructor still surfaces as the bug it is.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Dict, Iterable, Sequence, TypeVar

from .errors import VaekitError
from .zoo import ZOO, Variant

T = TypeVar("T")


class Registry:
    """``homes``: the modules whose import registers the built-in parts, imported when a part is first
    looked up; ``builtin``: their names, so listing them (``--help``, errors) needs no torch."""

    def __init__(self, kind: str, homes: Sequence[str] = (), builtin: Sequence[str] = ()):
        self.kind = kind
        self.homes, self.builtin = tuple(homes), tuple(builtin)
        self._items: Dict[str, object] = {}

    def load(self) -> None:
        """Import the homes (once each; Python caches them), so every built-in part is registered."""
        for home in self.homes:
            importlib.import_module(home)

    def register(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return wrap

    def get(self, name: str):
        if name not in self._items:
            self.load()
        if name not in self._items:
            known = ", ".join(self.names())
            raise VaekitError(f"unknown {self.kind} {name!r}; choose one of: {known}")
        return self._items[name]

    def names(self) -> list:
        return sorted(set(self._items) | set(self.builtin))

    def __contains__(self, name: str) -> bool:
        return name in self._items or name in self.builtin

    def build(self, name: str, args: Dict[str, Any], *context, where: str = "", **context_kw):
        """``cls(*context, **context_kw, **args)`` after checking ``args`` against its signature.

        ``context`` are what the caller supplies (shapes, sizes); of ``context_kw`` only those
        the constructor names are passed. ``args`` are the user's.
        """
        cls = self.get(name)
        check_args(cls, args, f"{where or self.kind} {name!r}", reserved=context_kw)
        accepted = accepted_args(cls)
        return cls(*context, **{k: v for k, v in context_kw.items() if k in accepted}, **args)


def _parameters(fn) -> list:
    """The parameters of ``fn``: a class (its constructor's, less self), a function or an ``inspect.Signature``."""
    if isinstance(fn, inspect.Signature):
        return list(fn.parameters.values())
    params = list(inspect.signature(fn.__init__ if inspect.isclass(fn) else fn).parameters.values())
    return params[1:] if inspect.isclass(fn) else params  # self


def accepted_args(fn) -> Dict[str, inspect.Parameter]:
    """The keyword arguments ``fn`` (a class, function or signature) accepts, by name."""
    return {p.name: p for p in _parameters(fn) if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def keyword_options(cls) -> Dict[str, inspect.Parameter]:
    """The keyword-only parameters of ``cls``'s constructor and of the bases it forwards ``**kwargs`` to:
    what ``__init__(self, *args, gamma=1.0, **kwargs)`` adds to its base, each default written once."""
    options: Dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = _parameters(inspect.signature(klass.__init__))
        options.update({p.name: p for p in params if p.kind == p.KEYWORD_ONLY and p.name not in options})
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return options


def keyword_defaults(cls) -> Dict[str, Any]:
    """``{name: default}`` of :func:`keyword_options`."""
    return {name: p.default for name, p in keyword_options(cls).items() if p.default is not p.empty}


def check_args(fn, args: Dict[str, Any], what: str, reserved: Iterable[str] = ()) -> None:
    """Raise a VaekitError naming the unknown keys of ``args`` and the ones ``fn`` takes."""
    if not isinstance(args, dict):
        raise VaekitError(f"the args of {what} must be a mapping of option names to values, got {args!r}")
    params = accepted_args(fn)
    signature = fn if isinstance(fn, inspect.Signature) else inspect.signature(fn)  # a class: what calling it takes
    if any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
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


class VariantRegistry(Registry):
    """The zoo (:mod:`vaekit.zoo`), filled when it is made; ``add`` puts a variant of your own beside them."""

    def add(self, name: str, description: str, paper: str, **config) -> Variant:
        variant = Variant(name, description, paper, config)
        self.register(name)(variant)
        return variant


# each registry's homes and built-in names (tests/test_startup.py checks that they agree)
MODELS = Registry("model structure", ["vaekit.models"],  # how the parts are wired: vae, ladder, vqvae, ...
                  ["aae", "ae", "factorvae", "fsq", "hvae", "jointvae", "ladder", "piwae", "rvq", "vae", "vaegan",
                   "vqgan", "vqvae"])
NETWORKS = Registry("network", ["vaekit.nn"], ["conv", "mlp", "resnet"])  # name -> (Encoder class, Decoder class)
DISCRIMINATORS = Registry("discriminator", ["vaekit.nn"], ["patchgan"])  # image discriminators: model.discriminator
POSTERIORS = Registry("posterior", ["vaekit.distributions"],
                      ["gaussian", "gumbel", "iaf", "planar", "radial", "vmf", "wrapped-normal"])
PRIORS = Registry("prior", ["vaekit.distributions"],
                  ["mog", "normal", "uniform-categorical", "uniform-sphere", "vamp", "wrapped-normal-origin"])
LIKELIHOODS = Registry("likelihood", ["vaekit.distributions"],
                       ["bernoulli", "categorical256", "continuous-bernoulli", "dlogistic", "gaussian", "laplace", "nb",
                        "poisson", "zinb"])
OBJECTIVES = Registry("objective", ["vaekit.objectives", "vaekit.models"],  # a structure's own objective beside it
                      ["aae", "ae", "beta-tc", "capacity", "ciwae", "dip-vae", "elbo", "factor", "iwae",
                       "joint-capacity", "miwae", "mmd", "msssim", "piwae", "rae", "swae", "vaegan", "vq"])
OPTIMIZERS = Registry("optimizer", ["vaekit.train.optimizers"], ["adam", "adamw", "rmsprop", "sgd"])
METRICS = Registry("metric", ["vaekit.evaluate"], ["au", "codebook", "disentanglement", "elbo", "fd", "fid", "knn",
                                                   "latent", "lpips", "nll", "probe", "psnr", "recon", "rfid",
                                                   "silhouette", "ssim"])
PLOTS = Registry("plot", ["vaekit.plots"],
                 ["curves", "interpolation", "latent", "manifold", "reconstructions", "samples", "traversal"])
SAMPLERS = Registry("sampler", ["vaekit.samplers"],  # densities fitted to the codes after training: gmm, maf, ...
                    ["gmm", "maf", "prior", "two-stage"])
VARIANTS = VariantRegistry("model")       # the zoo: --model NAME
for _variant in ZOO:
    VARIANTS.register(_variant.name)(_variant)
