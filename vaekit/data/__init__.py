"""Data: named datasets and files -> float tensors plus optional labels, split three ways.

    splits = load_data("fashion-mnist")        # or "digits", "x.npz", "table.csv", "images/"
    for x, y in iterate_batches(splits.train, 128, shuffle=True): ...

The public names are imported when first used (PEP 562), so a module of this package that needs no torch
(the image decoding worker, :mod:`vaekit.data.decode_worker`) imports none.
"""
from __future__ import annotations

from ..lazy_names import lazy_names

# public name -> the module that defines it
_HOMES = {"iterate_batches": ".batching", "DATASET_NAMES": ".builtin", "load_data": ".load",
          **dict.fromkeys(["DataInfo", "DataSplits", "TensorData"], ".types")}
__all__ = ["load_data", "TensorData", "DataInfo", "DataSplits", "iterate_batches", "DATASET_NAMES"]


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)
