"""vaekit: train, evaluate, sample and inspect variational autoencoders.

The public names are imported when first used (PEP 562), so ``vaekit --help`` starts without torch;
each registry imports the modules of its built-in parts when a part is first looked up.
"""
from __future__ import annotations

import sys
import types

from .lazy_names import lazy_names

__version__ = "0.2.0"
# public name -> the module that defines it
_HOMES = {
    **dict.fromkeys(["load", "open_run", "fit_sampler", "load_sampler"], ".app.api"),
    **dict.fromkeys(["RunConfig", "ModelConfig", "TrainConfig", "DataConfig", "Part"], ".config"),
    "load_data": ".data",
    "VaekitError": ".errors",
    **dict.fromkeys(["VAE", "Model", "ModelOutput", "build_model"], ".models"),
    **dict.fromkeys(["LIKELIHOODS", "METRICS", "MODELS", "NETWORKS", "OBJECTIVES", "OPTIMIZERS", "PLOTS", "POSTERIORS",
                     "PRIORS", "VARIANTS"], ".registry"),
}
__all__ = ["train", "load", "open_run", "fit_sampler", "load_sampler", "load_data", "build_model", "Model", "VAE",
           "ModelOutput", "VaekitError", "RunConfig", "ModelConfig", "TrainConfig", "DataConfig", "Part", "MODELS", "NETWORKS",
           "POSTERIORS", "PRIORS", "LIKELIHOODS", "OBJECTIVES", "OPTIMIZERS", "METRICS", "PLOTS", "VARIANTS",
           "__version__"]


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)


class _Package(types.ModuleType):
    """``vaekit.train`` is the function, though the subpackage ``vaekit/train/`` has its name: importing
    the subpackage binds it on this package, and this property keeps the function there instead."""

    @property
    def train(self):
        if "_train" in vars(self):
            return vars(self)["_train"]
        from .app.api import train

        return train

    @train.setter
    def train(self, value) -> None:
        if not isinstance(value, types.ModuleType):  # a replacement (a test's monkeypatch) is kept
            vars(self)["_train"] = value


sys.modules[__name__].__class__ = _Package
