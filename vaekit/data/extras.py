"""Optional packages of the ``formats`` extra, imported when a format needs them; a missing one names the extra."""
from __future__ import annotations

import importlib
import warnings

from ..errors import VaekitError

EXTRA = "pip install 'vaekit[formats]'"


def need(module: str, what: str):
    """``import module`` for reading ``what``, or a VaekitError naming the extra to install."""
    try:
        with warnings.catch_warnings():  # import-time deprecation notes of third-party packages
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError:
        raise VaekitError(f"reading {what} needs the {module.split('.')[0]} package: {EXTRA}") from None
