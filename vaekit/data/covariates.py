"""Categorical covariates (a batch, a donor) and count data, as scVI uses them (Lopez et al. 2018).

A covariate is a categorical value per example fed, one-hot, to encoder and decoder beside the CVAE's label
(:meth:`vaekit.models.base.Model.condition`). Where it comes from:

- a CSV/TSV table: the column of that name (``--covariate batch``), left out of the features;
- an AnnData .h5ad file: the ``obs`` column of that name (categorical, string or numeric);
- an .npz archive: the array of that name (``np.savez(path, x=counts, y=cell_types, batch=codes)``);
- a .npy file ``counts.npy``: the side file ``counts.batch.npy`` beside it.

Values are integers or strings; the categories are their sorted unique values (numbers in numeric order),
saved in the run (``DataInfo.extra["covariates"]``), so new data is coded as the training data was.

Batches carry the label and the covariates packed as one integer tensor (B, 1 + m): the label (-1 when
there is none) and the m covariate codes (:func:`pack`), the ``c`` a model with covariates reads.

Count data (``--counts``, on by default under a count likelihood) is kept as the raw whole numbers, not
standardized; :func:`require_counts` checks it when it is read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..errors import require

COVARIATES_KEY = "covariates"  # DataInfo.extra: [{"name": "batch", "categories": ["0", "1"]}, ...]


def categories_of(values: np.ndarray) -> List[str]:
    """The sorted unique values as strings, numbers in numeric order."""
    strings = sorted(set(_strings(values)))
    try:
        return sorted(strings, key=float)
    except ValueError:
        return strings


def encode(values, covariate: str, name: str, categories: Optional[Sequence[str]] = None) -> tuple:
    """``(codes int64 (N,), categories)``: ``values`` coded by ``categories`` (a run's own) or by their own."""
    values = np.asarray(values)
    require(values.ndim == 1, f"covariate '{covariate}' of {name} has shape {values.shape}; it must be one "
                              "value per example, a 1-D array (N,)")
    strings = _strings(values)
    require("" not in strings and "nan" not in strings,
            f"covariate '{covariate}' of {name} has an empty or NaN value; give every example a value")
    categories = list(categories) if categories is not None else categories_of(values)
    lookup = {c: i for i, c in enumerate(categories)}
    unknown = sorted(set(strings) - set(lookup))
    require(not unknown, f"covariate '{covariate}' of {name} has values {unknown[:5]} the run was not trained "
                         f"with (it knows {categories[:10]}); use data of the run's categories")
    return np.array([lookup[v] for v in strings], dtype=np.int64), categories


def side_arrays(path: Path, names: Sequence[str], name: str) -> Dict[str, np.ndarray]:
    """The covariates of an .npy file ``x.npy``: ``x.<covariate>.npy`` beside it."""
    from .files import _load_npy

    out = {}
    for covariate in names:
        side = path.with_name(f"{path.stem}.{covariate}.npy")
        require(side.is_file(), f"covariate '{covariate}' of {name} needs the file {side} (one value per example "
                                f"beside {path.name}); save it with numpy.save, or use an .npz with a "
                                f"'{covariate}' array")
        out[covariate] = _load_npy(side, f"'{side}'")
    return out


def pack(y: Optional[torch.Tensor], covariates: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """The ``c`` of a batch: the labels ``y`` (B,) alone, or with covariates (B, m) packed as (B, 1 + m),
    the label first (-1 where there is none)."""
    if covariates is None:
        return y
    label = torch.full_like(covariates[:, :1], -1) if y is None else y.reshape(-1, 1).to(covariates.dtype)
    return torch.cat([label, covariates], 1)


def require_counts(x: np.ndarray, name: str) -> None:
    """Count data: whole numbers of 0 or more (float32 holds them exactly up to 2 ** 24)."""
    bad = (x < 0) | (x != np.round(x))
    if bad.any():
        value = x[bad].flat[0]
        raise_counts(name, f"has the value {value:g}")
    require(not x.size or float(x.max()) <= 2 ** 24,
            f"{name} has counts above 2^24, which float32 cannot hold exactly; scale or cap them")


def raise_counts(name: str, what: str) -> None:
    require(False, f"{name} {what}, but count data (--counts, or a count likelihood: poisson, nb, zinb) "
                   "must be whole numbers of 0 or more; pass raw counts, or --no-counts with --likelihood gaussian")


def _strings(values: np.ndarray) -> List[str]:
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        return [str(int(v)) if w else str(v) for v, w in zip(values.tolist(), whole.tolist())]
    return [str(v).strip() for v in values.tolist()]
