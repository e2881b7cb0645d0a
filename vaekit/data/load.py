"""``load_data``: any supported source -> train/val/test tensors plus a :class:`DataInfo`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..errors import VaekitError, require
from .arrays import RawData, quantization_levels
from .builtin import DATASET_NAMES, canonical_name, load_named
from .files import SUPPORTED, read_path, readable
from .splits import TEST_FRACTION, TEST_SEED, random_test_split, split_indices, split_sizes
from ..image_options import parse_augment
from .augment import with_augment
from .covariates import COVARIATES_KEY, encode, require_counts
from .image_decode import ImageTransform
from .image_folder import image_extra, is_image_folder, list_images, scan_headers
from .image_stream import ImageRows
from .hf_datasets import is_hf_source, read_hf
from .format_stream import open_format
from .torch_dataset import PREFIX as PYTHON, is_torch_dataset, read_torch_dataset, refuse_reload, source_label
from .streaming import (column_stats, levels_sample, open_source, scan_images, scan_table, should_stream,
                        streamed_splits, train_stats)
from .types import DataInfo, DataSplits, TensorData


LEVELS_IMAGES = 64  # a streamed image folder's quantization check reads its first 64 images (in memory: 1 M values)


def load_data(
    source: str,
    *,
    data_dir: Union[str, os.PathLike, None] = None,
    label_column: Optional[str] = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    info: Optional[DataInfo] = None,
    download: bool = True,
    mirrors: Union[str, Sequence[str], None] = None,
    stream: Optional[bool] = None,
    image_size=None,
    channels: Optional[int] = None,
    augment=None,
    skip_bad_images: bool = False,
    workers: Optional[int] = None,
    layer: Optional[str] = None,
    image_column: Optional[str] = None,
    covariates: Sequence[str] = (),
    counts: bool = False,
) -> DataSplits:
    """Load a named dataset or a data path and split it into train / validation / test.

    source: a name in :data:`DATASET_NAMES` or a path (.npy, .npz, .csv/.tsv, IDX file, or a
        folder of images or IDX files).
    data_dir: where to look first for mnist / fashion-mnist IDX files.
    label_column: CSV column holding the labels (class names are its sorted unique values).
    val_fraction: share of the training data held out for validation, chosen with ``seed``.
        The test split is the dataset's own, or a fixed 20% (seed 0) when it has none.
    info: the :class:`DataInfo` of a trained run: its normalization is applied (not
        recomputed) and the examples must have its shape.
    download / mirrors: whether to download missing mnist / fashion-mnist files, and from
        which base URLs (default ``$VAEKIT_<NAME>_MIRRORS`` or the official mirrors).
    stream: read a .npy file or a folder of .npy shards batch by batch from disk instead of
        loading it (None: when it is large, see :mod:`vaekit.data.streaming`). Streamed
        splits are :class:`MappedData`; the numbers are the same either way.

    image_size / channels: the deterministic transform of a folder of images, ``S`` or ``HxW`` and 1
        or 3 (:mod:`vaekit.data.image_decode`); saved in ``info.extra["transform"]``, and a run's
        ``info`` brings its own, so new images get the transform the training images got.
    augment: e.g. ``"flip,crop"``: the training split's shuffled batches are augmented
        (:mod:`vaekit.data.augment`).
    skip_bad_images: leave out image files that cannot be read (listed in ``info.extra``) instead of
        refusing the folder.
    workers: processes decoding a streamed image folder (default: up to 4, one per CPU).
    layer: the layer of an AnnData .h5ad file to read instead of X (e.g. "counts").
    image_column: the image column of a Hugging Face dataset (default: its one image column).
    covariates: names of categorical covariates (a CSV column, an .npz array, or a side file
        ``x.<name>.npy``), coded as int64 ``covariates`` (N, m) of each split (:mod:`vaekit.data.covariates`).
    counts: the table is count data: checked to be whole numbers of 0 or more and kept raw, not
        standardized (``info.counts``). A run's ``info`` brings its own covariates and counts.

    Images come out float32 (N, C, H, W) in [0, 1]; tables float32 (N, D) standardized with
    the training split's per-column mean and std; labels int64 (N,).
    """
    require(isinstance(val_fraction, (int, float)) and 0 <= val_fraction < 1,
            f"val_fraction must be at least 0 and below 1, got {val_fraction!r}; "
            "use e.g. 0.1, or 0 for no validation split")
    augment = parse_augment(augment)
    if info is not None:
        covariates, counts = [c["name"] for c in info.covariates], info.counts
    covariates = list(covariates or ())
    require(not (stream and (covariates or counts)), f"data '{source}' is count data or has covariates, which load "
                                                     "in memory; drop --stream")
    stream = False if covariates or counts else stream
    if is_torch_dataset(source):
        raw = read_torch_dataset(source)
        return _split_raw(raw, source_label(source), info, val_fraction, seed, augment, covariates, counts)
    if str(source).startswith(PYTHON):
        raise refuse_reload(str(source))
    transform = _transform(str(source), image_size, channels, info)
    with readable(str(source)):
        path = _stream_path(str(source), stream, transform)
        if path is not None and is_image_folder(path):
            splits = _load_streamed_images(path, str(source), val_fraction, seed, info, transform, skip_bad_images,
                                          workers)
            splits.train = with_augment(splits.train, augment, "image", f"'{source}'")
            return splits
        if path is not None:
            return _load_streamed(path, str(source), val_fraction, seed, info, label_column, layer)
        raw = _read_source(str(source), data_dir, label_column, download, mirrors, transform, skip_bad_images,
                           layer, image_column, covariates)
    return _split_raw(raw, canonical_name(str(source)) or str(source), info, val_fraction, seed, augment,
                      covariates, counts)


def _split_raw(raw: RawData, source: str, info: Optional[DataInfo], val_fraction: float, seed: int,
               augment, covariates: Sequence[str] = (), counts: bool = False) -> DataSplits:
    """Data read into memory, checked against ``info``, split and normalized (count data is kept raw)."""
    if counts:
        require(raw.kind == "table", f"{_named(raw.name)} holds images, but count data is a table (N, features); "
                                     "drop --counts and use an image likelihood")
        require_counts(raw.x, _named(raw.name))
    if info is not None:
        _check_matches(_named(raw.name), tuple(raw.x.shape[1:]), raw.columns, info)
    n_official = None if raw.x_test is None else len(raw.x_test)
    _check_sizes(len(raw.x), raw.name, n_official, val_fraction)

    codes, known = _covariates(raw, covariates, info)
    data = TensorData(torch.from_numpy(raw.x), _labels(raw.y), _factors(raw.factors), covariates=codes)
    if raw.x_test is not None:
        trainval, test = data, TensorData(torch.from_numpy(raw.x_test), _labels(raw.y_test),
                                          _factors(raw.factors_test))
        test_split = "official"
    else:
        keep, held = split_indices(len(data), TEST_FRACTION, TEST_SEED, data.y)
        trainval, test = data.subset(keep), data.subset(held)
        test_split = random_test_split(data.y is not None)
    keep, held = split_indices(len(trainval), val_fraction, seed, trainval.y)
    train, val = trainval.subset(keep), trainval.subset(held)

    mean = std = None
    if info is not None:
        mean, std = info.mean, info.std
    elif raw.kind == "table" and not counts:
        mean, std = column_stats([train.x])
    out_info = DataInfo(
        name=source,
        kind=raw.kind,
        shape=tuple(int(s) for s in raw.x.shape[1:]),
        num_classes=raw.num_classes,
        class_names=raw.class_names,
        columns=raw.columns,
        mean=mean,
        std=std,
        extra={**raw.extra, "test_split": test_split, **({"counts": True} if counts else {}),
               **({COVARIATES_KEY: known} if known else {}),
               **_levels(raw.kind, raw.extra.get("levels"), lambda: raw.x.reshape(-1)[:1_000_000])},
    )
    train, val, test = (TensorData(out_info.normalize(d.x), d.y, d.factors, covariates=d.covariates)
                        for d in (train, val, test))
    return DataSplits(with_augment(train, augment, raw.kind, raw.name), val, test, out_info)


def _transform(source: str, image_size, channels, info: Optional[DataInfo]) -> ImageTransform:
    """The image transform: the run's (``info``) when it has one, else the options'; options are only for
    folders of images."""
    if info is not None and info.extra.get("transform"):
        return ImageTransform.from_dict(info.extra["transform"])
    transform = ImageTransform.from_options(image_size, channels)
    path = Path(source).expanduser()
    require(not transform.active or canonical_name(source) is None and path.is_dir(),
            f"--image-size and --channels apply to a folder of image files, but {source!r} is not one; "
            "drop them (resize and convert other data before loading it)")
    return transform


def _read_source(source: str, data_dir, label_column, download: bool, mirrors,
                 transform: ImageTransform, skip_bad: bool, layer=None, image_column=None,
                 covariates: Sequence[str] = ()) -> RawData:
    if is_hf_source(source):
        return read_hf(source, label_column, image_column)
    require(image_column is None, f"--image-column applies to Hugging Face datasets (hf-disk:PATH, "
                                  f"hf://datasets/NAME), not {source!r}; drop it")
    name = canonical_name(source)
    if name is not None:
        require(label_column is None,
                f"label_column only applies to CSV tables; dataset '{name}' already has its labels")
        require(not covariates, f"--covariate applies to a .csv, .npz or .npy file; dataset '{name}' has none")
        return load_named(name, data_dir=data_dir, download=download, mirrors=mirrors)
    path = Path(source).expanduser()
    if path.exists():
        return read_path(path, source, label_column, transform, skip_bad, layer, covariates)
    looks_like_path = os.sep in source or "/" in source or bool(Path(source).suffix)
    if looks_like_path:
        raise VaekitError(f"data path '{source}' does not exist (working directory: {os.getcwd()}); "
                          "check the path")
    raise VaekitError(f"unknown dataset '{source}': it is not a dataset name ({', '.join(DATASET_NAMES)}) "
                      f"nor an existing file or folder. Pass one of those names, or a path to {SUPPORTED}")


def _stream_path(source: str, stream: Optional[bool], transform: ImageTransform) -> Optional[Path]:
    """The path of ``source`` when it is to be streamed (see :mod:`vaekit.data.streaming`), else None."""
    path = Path(source).expanduser()
    if canonical_name(source) is not None or not path.exists():
        require(not stream, f"{source!r} cannot be streamed: streaming reads a .npy file, a folder of .npy "
                            "shards (x-0.npy, x-1.npy, ...), a Parquet/Feather table, an .h5ad file or a folder of "
                            "images; load it without --stream")
        return None
    return path if should_stream(path, f"'{source}'", stream, transform) else None


def _load_streamed(path: Path, source: str, val_fraction: float, seed: int, info: Optional[DataInfo],
                   label_column: Optional[str] = None, layer: Optional[str] = None) -> DataSplits:
    """:func:`load_data` for data read batch by batch: the same checks, splits and statistics."""
    name = f"'{source}'"
    opened = open_format(path, source, label_column, layer)  # Parquet, Feather, .h5ad
    if opened is not None:
        rows, y, num_classes, class_names, columns, extra = opened
        kind, shape = "table", (len(columns),)
    else:
        require(label_column is None and layer is None, f"--label-column and --layer do not apply to {name}")
        (rows, y, num_classes, class_names, kind, shape), columns, extra = open_source(path, name), None, {}
    n = int(rows.starts[-1])
    if kind == "image":
        rows.scale = scan_images(rows, n, (n, *shape), name)
    else:
        counts = scan_table(rows, n, name, counts="layer" in extra)  # .h5ad: whether they are counts
        extra.update({"counts": counts} if "layer" in extra else {})
    if info is not None:
        _check_matches(_named(name), shape, columns, info)
    _check_sizes(n, name, None, val_fraction)
    train, val, test, test_split = streamed_splits(rows, y, val_fraction, seed)
    mean = std = None
    if info is not None:
        mean, std = info.mean, info.std
    elif kind == "table":
        mean, std = train_stats(train)
    levels = _levels(kind, None, lambda: levels_sample(rows, n))
    rows.info = DataInfo(name=source, kind=kind, shape=tuple(int(s) for s in shape), num_classes=num_classes,
                         class_names=class_names, columns=columns, mean=mean, std=std,
                         extra={"path": str(path), **extra, "test_split": test_split, **levels})
    return DataSplits(train, val, test, rows.info)


def _load_streamed_images(path: Path, source: str, val_fraction: float, seed: int, info: Optional[DataInfo],
                          transform: ImageTransform, skip_bad: bool, workers: Optional[int]) -> DataSplits:
    """:func:`load_data` for a folder of images decoded batch by batch (:mod:`vaekit.data.image_stream`)."""
    name = f"'{source}'"
    files, labels, class_names = list_images(path, name)
    files, labels, shape, skipped = scan_headers(files, labels, transform, name, skip_bad)
    if info is not None:
        _check_matches(_named(name), shape, None, info)
    _check_sizes(len(files), name, None, val_fraction)
    rows = ImageRows(files, shape, transform, name, workers)
    y = None if labels is None else torch.from_numpy(labels).long()
    train, val, test, test_split = streamed_splits(rows, y, val_fraction, seed)
    sample = min(len(files), LEVELS_IMAGES, -(-1_000_000 // int(np.prod(shape))))  # decoded now, in order
    levels = _levels("image", None, lambda: rows.examples(np.arange(sample)).numpy().reshape(-1)[:1_000_000])
    rows.info = DataInfo(name=source, kind="image", shape=shape, num_classes=None if class_names is None else
                         len(class_names), class_names=class_names,
                         extra={"path": str(path), "test_split": test_split, **levels,
                                **image_extra(transform, skipped, name)})
    return DataSplits(train, val, test, rows.info)


def _check_matches(named: str, shape: tuple, columns: Optional[list], info: DataInfo) -> None:
    """New data must look like the data the run in ``info`` was trained on."""
    require(shape == tuple(info.shape),
            f"{named} has examples of shape {shape} but the run was trained on {tuple(info.shape)}; "
            "use data of the same shape as the training data")
    if columns is not None and info.columns is not None:
        require(list(columns) == list(info.columns),
                f"{named} has columns {columns} but the run was trained on columns {info.columns}; "
                "use a table with the same columns in the same order")


def _check_sizes(n: int, name: str, n_official: Optional[int], val_fraction: float) -> None:
    """Every split must get at least one example (validation only when asked for)."""
    def enough(m: int) -> bool:
        train, val, test = split_sizes(m, n_official, val_fraction)
        return train >= 1 and test >= 1 and (val >= 1 or val_fraction == 0)

    require(n_official != 0, f"data {name} has an empty test split; add test examples or remove x_test")
    if enough(n):
        return
    train, val, test = split_sizes(n, n_official, val_fraction)
    needed = next(m for m in range(n + 1, 10**6) if enough(m))
    parts = [] if n_official is not None else [f"a {TEST_FRACTION:.0%} test split"]
    parts += [f"a {val_fraction:.0%} validation split"] if val_fraction else []
    what = "example(s)" if n_official is None else "training example(s) besides its test split"
    raise VaekitError(
        f"data {name} has only {n} {what}, too few for {', '.join(parts)} and a training split "
        f"(that would leave train={train}, val={val}, test={test}); use at least {needed} examples"
        + (", or val_fraction=0 to skip validation" if val_fraction else "")
    )


def _covariates(raw: RawData, names: Sequence[str], info: Optional[DataInfo]) -> tuple:
    """``(codes (N, m) int64 or None, [{"name", "categories"}, ...])``, coded by the run's categories if any."""
    if not names:
        return None, []
    runs = {c["name"]: c["categories"] for c in info.covariates} if info is not None else {}
    codes, known = [], []
    for c in names:
        values = raw.covariates[c]
        require(len(values) == len(raw.x), f"covariate '{c}' of {_named(raw.name)} has {len(values)} values for "
                                           f"{len(raw.x)} examples; give one value per example")
        code, categories = encode(values, c, _named(raw.name), runs.get(c))
        codes.append(code)
        known.append({"name": c, "categories": categories})
    return torch.from_numpy(np.stack(codes, 1)), known


def _labels(y) -> Optional[torch.Tensor]:
    return None if y is None else torch.from_numpy(y).long()


def _factors(f) -> Optional[torch.Tensor]:
    return None if f is None else torch.as_tensor(np.asarray(f, dtype=np.float32))


def _levels(kind: str, known: Optional[int], sample) -> dict:
    """``{"levels": L}`` for images quantized to L evenly spaced values (checked on ``sample()``,
    the first million values)."""
    if kind != "image":
        return {}
    levels = known or quantization_levels(sample())
    return {"levels": levels} if levels else {}


def _named(name: str) -> str:
    """How messages name data: "dataset 'shapes'" as it is, a path as "data 'x.npz'"."""
    return name if name.startswith("dataset ") else f"data {name}"
