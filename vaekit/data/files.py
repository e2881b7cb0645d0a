"""Data given as a path: .npy/.npz arrays, CSV/TSV tables, IDX files, folders of images or IDX files."""
from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import VaekitError, require
from .arrays import RawData, encode_labels, to_examples
from .builtin import find_idx_files, read_idx_files
from .arrow_table import is_arrow_file, read_arrow_table
from .covariates import side_arrays
from .csv_table import read_csv
from .h5ad import is_h5ad, read_h5ad
from .idx import MAX_INFLATION, read_idx
from .image_decode import ImageTransform
from .image_folder import read_image_folder
from .npy_reader import NPY_FIX, is_shard_folder, read_array, shard_files

SUPPORTED = (".npy (array), a folder of .npy shards (x-0.npy, x-1.npy, ..., optional y-0.npy, ...), .npz (arrays x/y, optional x_test/y_test), .csv/.tsv, .parquet or .feather (table), "
             ".h5ad (AnnData), hf-disk:FOLDER (Hugging Face datasets), "
             "IDX files (train-images-idx3-ubyte[.gz]), or a folder of PNG/JPEG/WebP images "
             "(class sub-folders become labels) or of IDX files")
DATA_KEYS = ("x", "X", "data")
LABEL_KEYS = ("y", "Y", "labels", "targets")
TEST_KEYS = ("x_test", "X_test")
TEST_LABEL_KEYS = ("y_test", "Y_test", "labels_test", "targets_test")


def read_path(path: Path, source: str, label_column: Optional[str] = None,
              transform: ImageTransform = ImageTransform(), skip_bad: bool = False,
              layer: Optional[str] = None, covariates: Sequence[str] = ()) -> RawData:
    """Read the data at ``path`` (which exists); ``source`` is how the user named it. ``transform``
    and ``skip_bad`` apply to a folder of images (:mod:`vaekit.data.image_folder`), ``layer`` to .h5ad,
    ``covariates`` to tables, .h5ad, .npz and .npy files (:mod:`vaekit.data.covariates`)."""
    require(layer is None or is_h5ad(path), f"--layer {layer} applies to AnnData .h5ad files, but '{source}' is "
                                            "not one; drop --layer")
    name = f"'{source}'"
    suffix = path.suffix.lower()
    is_csv = path.is_file() and suffix in (".csv", ".tsv")
    require(not covariates or (path.is_file() and suffix in (".csv", ".tsv", ".npy", ".npz", ".h5ad")),
            f"--covariate applies to a .csv/.tsv table, an .h5ad file (obs columns), an .npz or an .npy file, but "
            f"{name} is none of them")
    require(label_column is None or is_csv or is_arrow_file(path) or is_h5ad(path),
            f"--label-column {label_column} only applies to CSV/TSV, Parquet, Feather and .h5ad tables, but {name} "
            "is not one; "
            "arrays give labels as 'y' in an .npz, image folders as class sub-folders")
    if is_shard_folder(path):
        return _with_path(_read_shards(path, name), path)
    if path.is_dir():
        idx_files = find_idx_files(path)
        if "x" in idx_files:
            has = set(idx_files)
            require("y_test" not in has or "x_test" in has,
                    f"folder {name} has t10k-labels but no t10k-images IDX file; add it or remove the labels")
            require("x_test" not in has or ("y" in has) == ("y_test" in has),
                    f"folder {name} has IDX labels for only one of train and t10k; add the missing labels file")
            return read_idx_files(idx_files, name, None, path)
        return read_image_folder(path, name, transform, skip_bad)
    if is_csv:
        return read_csv(path, name, label_column, covariates)
    if is_arrow_file(path):
        return read_arrow_table(path, source, label_column)
    if is_h5ad(path):
        return read_h5ad(path, source, label_column, layer, covariates)
    if suffix == ".npy":
        raw = _with_path(_from_arrays(_load_npy(path, name), None, None, None, name), path)
        raw.covariates = side_arrays(path, covariates, name) if covariates else None
        return raw
    if suffix == ".npz":
        return _with_path(_read_npz(path, name, covariates), path)
    if "idx" in path.name.lower():
        return _read_idx_file(path, name)
    raise VaekitError(f"{name} has an unsupported file type '{suffix or path.name}'; supported: {SUPPORTED}")


@contextlib.contextmanager
def readable(source: str):
    """Turn a file or folder of the data that this user may not read (listing or opening it) into one
    VaekitError naming it."""
    try:
        yield
    except PermissionError as e:
        where = os.fsdecode(e.filename) if e.filename is not None else source
        raise VaekitError(f"cannot read '{where}' (of data '{source}'): permission denied; make it readable "
                          f"(chmod) or run vaekit as a user who can read it") from None


def _load_npy(path: Path, name: str) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            return read_array(f, name, os.fstat(f.fileno()).st_size)
    except PermissionError:  # said by data.files.readable
        raise
    except OSError as e:
        raise VaekitError(f"could not read {name} as a .npy array ({e}); {NPY_FIX}") from None


def _read_shards(path: Path, name: str) -> RawData:
    """A folder of .npy shards (see :mod:`vaekit.data.npy_reader`), concatenated in memory."""
    x_files, y_files = shard_files(path, name)
    x = np.concatenate([f.read_all() for f in x_files])
    y = None if y_files is None else np.concatenate([f.read_all() for f in y_files])
    return _from_arrays(x, y, None, None, name)


def _read_npz(path: Path, name: str, covariates: Sequence[str] = ()) -> RawData:
    try:
        arrays = _npz_arrays(path, name)
    except PermissionError:  # said by data.files.readable
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError,
            UnicodeDecodeError) as e:  # UnicodeDecodeError: a member name flagged UTF-8 that is not
        raise VaekitError(f"could not read {name} as an .npz archive ({e}); check that the file is complete "
                          "and was written with numpy.savez from numeric arrays") from None
    require(arrays, f"{name} holds no arrays; save the data as numpy.savez(path, x=..., y=...)")
    for c in covariates:
        require(c in arrays, f"{name} has no array '{c}' (--covariate); its arrays are: {', '.join(arrays)}")
    known = set(LABEL_KEYS + TEST_KEYS + TEST_LABEL_KEYS + tuple(covariates))
    data_key = _first(arrays, DATA_KEYS) or next((k for k in arrays if k not in known), None)
    require(data_key is not None, f"{name} has only label/test arrays ({', '.join(arrays)}); add the data as 'x'")

    def get(keys):
        key = _first(arrays, keys)
        return None if key is None else arrays[key]

    raw = _from_arrays(arrays[data_key], get(LABEL_KEYS), get(TEST_KEYS), get(TEST_LABEL_KEYS), name)
    require(not covariates or raw.x_test is None, f"{name} has an official test split (x_test), which --covariate "
                                                  "does not read; put all examples in 'x' (a 20% test split is held out)")
    raw.covariates = {c: arrays[c] for c in covariates} or None
    return raw


def _npz_arrays(path: Path, name: str) -> dict:
    """The .npy members of an .npz archive by name (without .npy), each checked by its header before
    it is read. A member may claim at most :data:`MAX_INFLATION` times its compressed size (what
    deflate can reach), and no more compressed bytes than the archive holds."""
    arrays = {}
    size = os.path.getsize(path)
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[:-4]
            member = f"{name} (array '{key}')"
            require(info.compress_size <= size and info.file_size <= MAX_INFLATION * info.compress_size + 1024,
                    f"{member} claims {info.file_size} bytes from {info.compress_size} compressed bytes in a "
                    f"{size}-byte archive, which is impossible; the archive is corrupt or crafted. {NPY_FIX}")
            with z.open(info) as f:
                arrays[key] = read_array(f, member, info.file_size)
    return arrays


def _from_arrays(x, y, x_test, y_test, name: str) -> RawData:
    """Check and convert arrays (and an optional official test split) into RawData."""
    x, kind = to_examples(x, name)
    if x_test is not None:
        x_test, test_kind = to_examples(x_test, f"{name} (x_test)")
        require(x_test.shape[1:] == x.shape[1:],
                f"{name}: x_test has examples of shape {x_test.shape[1:]} but x has {x.shape[1:]}; they must match")
    require(y_test is None or x_test is not None, f"{name} has test labels but no 'x_test' array; add x_test")
    require(x_test is None or (y is None) == (y_test is None),
            f"{name} has labels for only one of the train and test arrays; give both 'y' and 'y_test' or neither")
    num_classes = class_names = None
    if y is not None:
        parts = [y] if y_test is None else [y, y_test]
        sizes = [len(x)] if y_test is None else [len(x), len(x_test)]
        codes, num_classes, class_names = encode_labels(parts, sizes, name)
        y, y_test = codes[0], (codes[1] if y_test is not None else None)
    return RawData(name, kind, x, y, x_test, y_test, num_classes=num_classes, class_names=class_names)


def _read_idx_file(path: Path, name: str) -> RawData:
    """One IDX images file; labels are taken from the matching '-labels-idx1-' file beside it."""
    x = read_idx(path)
    y = None
    label_name = path.name.replace("images-idx3", "labels-idx1")
    if label_name != path.name:
        stem = label_name[:-3] if label_name.endswith(".gz") else label_name
        for candidate in (path.with_name(stem + ".gz"), path.with_name(stem)):
            if candidate.is_file():
                y = read_idx(candidate)
                break
    return _with_path(_from_arrays(x, y, None, None, name), path)


def _first(arrays: dict, keys) -> Optional[str]:
    return next((k for k in keys if k in arrays), None)


def _with_path(raw: RawData, path: Path) -> RawData:
    raw.extra["path"] = str(path)
    return raw
