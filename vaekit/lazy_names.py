"""A package's public names imported when first used (PEP 562): its ``__getattr__`` and ``__dir__``."""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Dict, Iterable, Tuple


def lazy_names(package: str, homes: Dict[str, str], public: Iterable[str]) -> Tuple[Callable, Callable]:
    """``homes``: public name -> the module (relative to ``package``) that defines it."""
    public = list(public)

    def __getattr__(name: str):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name], package), name)
        setattr(sys.modules[package], name, value)  # found directly from now on
        return value

    def __dir__() -> list:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__
