"""Hugging Face ``datasets`` (the ``formats`` extra): ``hf-disk:PATH`` (a dataset saved with ``save_to_disk``)
and ``hf://datasets/NAME`` (``datasets.load_dataset``, which honours its cache and ``HF_DATASETS_OFFLINE``).

A dataset with an image column (a ``datasets.Image`` feature; ``image_column`` names one when there are several)
becomes images; otherwise its numeric columns are a table (:mod:`vaekit.data.arrow_table`). The label column is
``label_column``, else the dataset's one ``ClassLabel`` column, else none. A ``DatasetDict`` gives its ``train``
split, and its ``test`` split as the official test split.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import VaekitError, require
from .arrays import RawData, to_examples
from .arrow_table import batch_values, label_codes, plan_columns
from .extras import need

DISK, HUB = "hf-disk:", "hf://datasets/"


def is_hf_source(source: str) -> bool:
    return source.startswith(DISK) or source.startswith(HUB)


@contextlib.contextmanager
def _quiet():
    """No progress bars, log lines or warnings from datasets reach the user."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        previous = logging.getLogger("datasets").level
        logging.getLogger("datasets").setLevel(logging.ERROR)
        try:
            yield
        finally:
            logging.getLogger("datasets").setLevel(previous)


def _open(source: str):
    datasets = need("datasets", f"Hugging Face dataset {source!r}")
    datasets.disable_progress_bars()
    if source.startswith(DISK):
        path = Path(source[len(DISK):]).expanduser()
        require(path.is_dir(), f"hf-disk folder '{path}' does not exist; pass the folder a dataset was saved to "
                               "with save_to_disk (hf-disk:PATH)")
        try:
            with _quiet():
                return datasets.load_from_disk(str(path))
        except PermissionError:
            raise
        except (FileNotFoundError, OSError, ValueError, KeyError, TypeError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise VaekitError(f"could not read Hugging Face dataset {source!r}: {reason}; pass a folder written by "
                              "Dataset.save_to_disk") from None
    name = source[len(HUB):].strip("/")
    require(name, f"{source!r} names no dataset; write hf://datasets/ORG/NAME")
    try:
        with _quiet():
            return datasets.load_dataset(name)
    except Exception as e:  # network, cache and builder errors of a third-party package: one line for the user
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise VaekitError(f"could not load Hugging Face dataset {source!r}: {reason}; offline "
                          "(HF_DATASETS_OFFLINE=1 or no network) it must already be in the datasets cache: "
                          "load it once online, or save it with save_to_disk and pass hf-disk:PATH") from None


def _splits(ds, source: str) -> tuple:
    """``(train, test or None)`` of a Dataset or a DatasetDict."""
    if hasattr(ds, "features"):
        return ds, None
    names = list(ds.keys())
    require("train" in names or len(names) == 1, f"Hugging Face dataset {source!r} has splits {names} but no "
                                                 "'train' split; save the one to train on with save_to_disk")
    train = ds["train" if "train" in names else names[0]]
    return train, ds["test"] if "test" in names and "train" in names else None


def _pick(features: dict, wanted: Optional[str], kind, what: str, source: str) -> Optional[str]:
    """The column named ``wanted`` (checked), else the one column of feature type ``kind``, else None."""
    if wanted is not None:
        require(wanted in features, f"Hugging Face dataset {source!r} has no column '{wanted}' ({what}); its "
                                    f"columns are: {', '.join(features)}")
        return wanted
    found = [c for c, f in features.items() if isinstance(f, kind)]
    require(len(found) <= 1, f"Hugging Face dataset {source!r} has several {kind.__name__} columns "
                             f"({', '.join(found)}); name the one to use with --{what.replace('_', '-')}")
    return found[0] if found else None


def read_hf(source: str, label_column: Optional[str] = None, image_column: Optional[str] = None) -> RawData:
    """A Hugging Face dataset as RawData: images or a table, with labels (see the module)."""
    datasets = need("datasets", f"Hugging Face dataset {source!r}")
    train, test = _splits(_open(source), source)
    features = dict(train.features)
    image = _pick(features, image_column, datasets.Image, "image_column", source)
    label = _pick(features, label_column, datasets.ClassLabel, "label_column", source)
    if image is not None:
        require(isinstance(features[image], datasets.Image),
                f"Hugging Face dataset {source!r} column '{image}' holds {features[image]}, not images")
    what = f"Hugging Face dataset {source!r}"
    parts = [_read_split(s, image, label, what) for s in ([train] if test is None else [train, test])]
    (x, y), (x_test, y_test) = parts[0], (parts[1] if test is not None else (None, None))
    if image is not None:
        x, kind = to_examples(x, what)
        x_test = None if x_test is None else to_examples(x_test, f"{what} (test split)")[0]
        columns = None
    else:
        kind, columns = "table", [c for c in features if c != label]
    num_classes = class_names = None
    if label is not None:
        feature = features[label]
        if isinstance(feature, datasets.ClassLabel):
            class_names, num_classes = list(feature.names), int(feature.num_classes)
            y, y_test = np.asarray(y, dtype=np.int64), None if y_test is None else np.asarray(y_test, dtype=np.int64)
            require(y.min() >= 0 and (y_test is None or y_test.min() >= 0),
                    f"{what} has rows without a class in '{label}' (-1); drop them")
        else:
            both = list(y) + ([] if y_test is None else list(y_test))
            codes, num_classes, class_names = label_codes(both, what, label)
            y, y_test = codes[:len(y)], (None if y_test is None else codes[len(y):])
    if y is not None:
        y = np.asarray(y, dtype=np.int64)
    return RawData(repr(source), kind, x, y, x_test, y_test, num_classes=num_classes, class_names=class_names,
                   columns=columns, extra={"label_column": label, "image_column": image})


def _read_split(ds, image: Optional[str], label: Optional[str], what: str) -> tuple:
    """``(x, labels list or None)`` of one split: images as one uint8/float array, or the table's numbers."""
    require(len(ds) > 0, f"{what} has an empty split; it needs at least one example")
    labels = None if label is None else ds.data.table.column(label).to_pylist()
    if image is None:
        table = ds.data.table
        features = plan_columns(table.schema, what, label)
        from .arrays import to_table

        return to_table(batch_values(table, features, what), what, columns=features), labels
    arrays, shapes = [], set()
    try:
        with _quiet():
            images = ds[image]  # decoded by datasets (PIL)
    except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for a broken or foreign image
        raise VaekitError(f"{what} has an image in column '{image}' that cannot be decoded ({e}); fix or drop "
                          "that row") from None
    with _quiet():
        for i, img in enumerate(images):
            require(img is not None, f"{what} row {i} has no image in column '{image}'; drop it")
            a = np.asarray(img)
            shapes.add(a.shape)
            require(len(shapes) == 1, f"{what} has images of different shapes ({', '.join(map(str, shapes))}) or "
                                      "modes; resize them to one size and mode first (e.g. with dataset.map)")
            arrays.append(a)
    return np.stack(arrays), labels
