"""Named datasets: ``digits`` (bundled with scikit-learn), ``mnist``, ``fashion-mnist`` and
``shapes`` (dSprites-style images with known factors, drawn on demand: ``shapes-N``,
``shapes-N-seedS``, in colour ``shapes-color``; see :mod:`vaekit.data.shapes`) and ``patches`` (crops of
the photographs shipped in installed packages; see :mod:`vaekit.data.patches`).

MNIST-style IDX files are looked up, in order, in ``data_dir``, ``$VAEKIT_DATA_DIR`` (each
also with a ``<name>/`` sub-folder), the user cache ``$XDG_CACHE_HOME/vaekit/<name>``
(default ``~/.cache/vaekit/<name>``) and ``/usr/share/datasets/<name>`` (the Debian package
``dataset-fashion-mnist``). If none has them they are downloaded once into the cache.
"""
from __future__ import annotations

import importlib.util

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import VaekitError, require
from ..paths import safe_name
from .arrays import RawData, to_images
from .download import DownloadError, download_dataset
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from .patches import load_patches, parse_patches, patches_name
from .shapes import load_shapes, parse_name, shapes_name

DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "shapes", "shapes-color", "patches")
SYSTEM_DATA_DIRS = [Path("/usr/share/datasets")]  # tests replace this list

IDX_STEMS = {
    "x": "train-images-idx3-ubyte",
    "y": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
CLASS_NAMES = {
    "digits": [str(i) for i in range(10)],
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}


def canonical_name(source: str) -> Optional[str]:
    """``source`` as a known dataset name ('Fashion_MNIST' -> 'fashion-mnist',
    'Shapes-10000' -> 'shapes'), else None."""
    key = source.strip().lower().replace("_", "-")
    shapes = parse_name(key)
    if shapes is not None:
        return shapes_name(*shapes)
    patches = parse_patches(key)
    if patches is not None:
        return patches_name(*patches)
    return key if key in DATASET_NAMES else None


def load_named(name: str, *, data_dir=None, download: bool = True,
               mirrors: Union[str, Sequence[str], None] = None) -> RawData:
    """Read the named dataset ``name`` (one of :data:`DATASET_NAMES`)."""
    if name == "digits":
        return load_digits()
    if parse_name(name) is not None:
        return load_shapes(*parse_name(name))
    if parse_patches(name) is not None:
        return load_patches(*parse_patches(name))
    return load_idx_dataset(name, data_dir=data_dir, download=download, mirrors=mirrors)


def load_digits() -> RawData:
    """scikit-learn's 8x8 digits: 1797 images with values 0..16, scaled to [0, 1].

    Read from the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and
    the label per row), found without importing scikit-learn, whose import takes longer than
    reading the file; ``sklearn.datasets.load_digits`` where the file is not there."""
    table = _digits_table()
    x = (table[:, :-1] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return RawData("dataset 'digits'", "image", x, table[:, -1].astype(np.int64),
                   num_classes=10, class_names=CLASS_NAMES["digits"], extra={"levels": 17})


def _digits_table() -> np.ndarray:
    """(1797, 65): the pixels, then the label."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return np.loadtxt(path, delimiter=",")
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return np.column_stack([bunch.data, bunch.target])


def cache_dir(name: str) -> Path:
    """Where downloads of ``name`` go: ``$XDG_CACHE_HOME/vaekit/<name>`` or ``~/.cache/vaekit/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "vaekit" / safe_name(name)  # a dataset's name never leads out of the cache


def search_dirs(name: str, data_dir=None) -> list:
    """Directories searched for the IDX files of ``name``, in order."""
    dirs = []
    for base in (data_dir, os.environ.get("VAEKIT_DATA_DIR")):
        if base:
            base = Path(base).expanduser()
            dirs += [base, base / name]
    dirs.append(cache_dir(name))
    dirs += [Path(d) / name for d in SYSTEM_DATA_DIRS]
    return dirs


def find_idx_files(folder: Path) -> dict:
    """Map 'x', 'y', 'x_test', 'y_test' to the files present in ``folder`` (.gz or raw)."""
    found = {}
    for key, stem in IDX_STEMS.items():
        for candidate in (folder / (stem + ".gz"), folder / stem):
            if candidate.is_file():
                found[key] = candidate
                break
    return found


def load_idx_dataset(name: str, *, data_dir=None, download: bool = True,
                     mirrors: Union[str, Sequence[str], None] = None) -> RawData:
    """Read ``mnist`` or ``fashion-mnist`` from the first directory holding all four files."""
    if data_dir is not None:
        require(Path(data_dir).expanduser().is_dir(),
                f"data directory '{data_dir}' (--data-dir) does not exist; pass a folder that holds the "
                f"{name} IDX files ({', '.join(s + '.gz' for s in IDX_STEMS.values())})")
    dirs = search_dirs(name, data_dir)
    partial = {}  # folder -> names of the missing files
    for folder in dirs:
        files = find_idx_files(folder)
        if len(files) == len(IDX_STEMS):
            return read_idx_files(files, f"dataset '{name}'", CLASS_NAMES[name], folder)
        if files:
            partial[folder] = [IDX_STEMS[k] for k in IDX_STEMS if k not in files]
    hint = _how_to_fix(name, dirs, partial)
    if not download:
        raise VaekitError(f"dataset '{name}' was not found and download is off. {hint}")
    try:
        folder = download_dataset(name, cache_dir(name), mirrors=mirrors)
    except DownloadError as e:
        tried = "".join(f"\n  {f}" for f in e.failures)
        raise VaekitError(f"dataset '{name}' was not found and downloading it failed: {e}{tried}\n{hint}") from None
    return read_idx_files(find_idx_files(folder), f"dataset '{name}'", CLASS_NAMES[name], folder)


def read_idx_files(files: dict, name: str, class_names: Optional[list], folder: Path) -> RawData:
    """Build a dataset from IDX files keyed 'x', 'y' and optionally 'x_test', 'y_test'."""
    arrays = {}
    for key, path in files.items():
        arr = read_idx(path)
        is_images = key.startswith("x")
        want_ndim, magic = (3, IMAGES_MAGIC) if is_images else (1, LABELS_MAGIC)
        require(arr.ndim == want_ndim and arr.dtype == np.uint8,
                f"IDX file '{path}' should hold {'images' if is_images else 'labels'} (magic number "
                f"{magic:#06x}: uint8, {want_ndim} dimension(s)) but holds {arr.dtype} of shape {arr.shape}; "
                f"check the file names ({IDX_STEMS[key]}[.gz])")
        arrays[key] = arr
    for x_key, y_key in (("x", "y"), ("x_test", "y_test")):
        if x_key in arrays and y_key in arrays:
            nx, ny = len(arrays[x_key]), len(arrays[y_key])
            require(nx == ny, f"{name}: '{files[x_key]}' has {nx} images but '{files[y_key]}' has {ny} labels; "
                              "the files do not belong together, download or copy them again")
    if "x_test" in arrays and "x" in arrays:
        require(arrays["x_test"].shape[1:] == arrays["x"].shape[1:],
                f"{name}: train images are {arrays['x'].shape[1:]} but test images are {arrays['x_test'].shape[1:]}")
    require(len(arrays.get("x", ())) > 0, f"{name}: '{files.get('x', folder)}' holds no images")
    labels = [arrays[k] for k in ("y", "y_test") if k in arrays]
    num_classes = None
    if labels:
        num_classes = max(int(y.max()) for y in labels if len(y)) + 1
        if class_names is not None:
            require(num_classes <= len(class_names),
                    f"{name}: labels go up to {num_classes - 1} but the dataset has {len(class_names)} classes; "
                    "the label files are corrupt or belong to another dataset")
            num_classes = len(class_names)

    def images(key):
        return to_images(arrays[key][:, None], name) if key in arrays else None

    def ints(key):
        return arrays[key].astype(np.int64) if key in arrays else None

    return RawData(name, "image", images("x"), ints("y"), images("x_test"), ints("y_test"),
                   num_classes=num_classes, class_names=class_names if labels else None,
                   extra={"path": str(folder)})


def _how_to_fix(name: str, dirs: list, partial: dict) -> str:
    searched = "".join(f"\n  {d}" + (f" (has only some files; missing {', '.join(partial[d])})"
                                      if d in partial else "") for d in dirs)
    files = ", ".join(s + "[.gz]" for s in IDX_STEMS.values())
    text = (f"Searched for {files} in:{searched}\n"
            f"To fix: put those files in a folder and pass --data-dir FOLDER (data_dir=FOLDER) or set "
            f"VAEKIT_DATA_DIR=FOLDER, or allow the download (network access to the mirrors)")
    if name == "fashion-mnist":
        text += "; on Debian/Ubuntu: apt-get install dataset-fashion-mnist"
    return text + ". The 'digits' dataset always works offline."
