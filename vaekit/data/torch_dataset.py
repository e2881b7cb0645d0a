"""A ``torch.utils.data.Dataset`` (or any sequence) given to ``vaekit.train`` in Python: each item is ``x`` or
``(x, y)``, read once into memory and then checked, split and normalized like an array.

The run's config names it ``python:CLASS`` (:func:`source_label`): an in-memory object cannot be reloaded from a
config, so a run trained on one needs its data passed again to resume, evaluate, plot or encode.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import VaekitError, require
from .arrays import RawData

PREFIX = "python:"


def is_torch_dataset(obj: Any) -> bool:
    return isinstance(obj, torch.utils.data.Dataset)


def source_label(dataset) -> str:
    """How the config names an in-memory dataset: ``python:CLASS``."""
    return f"{PREFIX}{type(dataset).__name__}"


def refuse_reload(source: str) -> VaekitError:
    return VaekitError(f"data {source!r} was an in-memory Python dataset given to vaekit.train, which a run's config "
                       "cannot reload; pass the data again (vaekit.train(dataset, out=RUN, resume=True), or data=... "
                       "/ --data PATH to evaluate, plot or encode)")


def _array(value, what: str) -> np.ndarray:
    try:
        a = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise VaekitError(f"{what} is not an array ({type(value).__name__}: {e}); items must be x or (x, y) with "
                          "x a tensor or array") from None
    return a


def read_torch_dataset(dataset) -> RawData:
    """Every item of ``dataset`` (``x`` or ``(x, y)``) stacked: RawData checked as an array would be."""
    from .files import _from_arrays

    name = f"'{source_label(dataset)}'"
    items = iter(dataset) if not hasattr(dataset, "__len__") else (dataset[i] for i in range(len(dataset)))
    xs, ys = [], []
    for i, item in enumerate(items):
        labelled = isinstance(item, (tuple, list))
        require(not labelled or len(item) == 2, f"item {i} of {name} has {len(item)} parts; items must be x or "
                                                "(x, y)")
        x = _array(item[0] if labelled else item, f"item {i} of {name}")
        if xs:
            require(x.shape == xs[0].shape, f"item {i} of {name} has shape {x.shape} but item 0 has {xs[0].shape}; "
                                            "every x must have the same shape")
            require(labelled == bool(ys), f"item {i} of {name} {'has' if labelled else 'lacks'} a label but item 0 "
                                          f"{'does not' if labelled else 'has one'}; give every item a label (x, y) "
                                          "or none")
        xs.append(x)
        if labelled:
            y = _array(item[1], f"label of item {i} of {name}")
            require(y.size == 1, f"the label of item {i} of {name} has shape {y.shape}; a label is one number")
            ys.append(y.reshape(()).item())
    require(xs, f"{name} is empty; it needs at least one item")
    raw = _from_arrays(np.stack(xs), np.asarray(ys) if ys else None, None, None, name)
    raw.extra["python_dataset"] = type(dataset).__name__
    return raw
