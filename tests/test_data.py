"""Data layer: named datasets, file formats, splits, normalization and error messages."""
from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.data import DATASET_NAMES, DataInfo, load_data
from vaekit.data import builtin
from vaekit.data.idx import read_idx, write_idx
from vaekit.errors import VaekitError


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """No real cache, env dir or /usr/share/datasets; nothing downloads."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VAEKIT_DATA_DIR", raising=False)
    monkeypatch.setattr(builtin, "SYSTEM_DATA_DIRS", [tmp_path / "system"])
    monkeypatch.setenv("VAEKIT_MNIST_MIRRORS", "http://127.0.0.1:9/")  # discard port: never answers
    monkeypatch.setenv("VAEKIT_FASHION_MNIST_MIRRORS", "http://127.0.0.1:9/")


def all_splits(splits):
    """(x, y) of train, val and test concatenated."""
    parts = (splits.train, splits.val, splits.test)
    y = None if splits.train.y is None else torch.cat([p.y for p in parts])
    return torch.cat([p.x for p in parts]), y


def match_rows(got: torch.Tensor, expected: np.ndarray, atol=1e-6) -> np.ndarray:
    """Assert ``got`` holds exactly the examples of ``expected`` in some order; return that order."""
    g = got.reshape(len(got), -1).double().numpy()
    e = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    assert g.shape == e.shape
    match = ((g[:, None, :] - e[None]) ** 2).sum(-1).argmin(1)
    assert sorted(match.tolist()) == list(range(len(e))), "examples lost or duplicated"
    np.testing.assert_allclose(g, e[match], atol=atol)
    return match


# ---------------------------------------------------------------- digits

def test_digits_shapes_ranges_labels_and_sizes():
    from sklearn.datasets import load_digits

    s = load_data("digits")
    assert DATASET_NAMES == ("digits", "mnist", "fashion-mnist", "shapes", "shapes-color", "patches")
    assert (len(s.train), len(s.val), len(s.test)) == (1294, 144, 359)  # 1797 = 1438 + 359; 10% of 1438
    for part in (s.train, s.val, s.test):
        assert part.x.dtype == torch.float32 and part.x.shape[1:] == (1, 8, 8)
        assert part.y.dtype == torch.int64
    x, y = all_splits(s)
    assert x.min() == 0 and x.max() == 1
    assert s.info.kind == "image" and s.info.shape == (1, 8, 8) and s.info.num_classes == 10
    assert s.info.class_names == [str(i) for i in range(10)] and s.info.mean is None
    # every example exactly once, with its label, scaled by 1/16
    digits = load_digits()
    got = Counter((tuple((row * 16).round().int().tolist()), int(lab)) for row, lab in zip(x.reshape(-1, 64), y))
    want = Counter((tuple(row.astype(int).tolist()), int(lab)) for row, lab in zip(digits.data, digits.target))
    assert got == want
    # stratified test split: each class gives ~20%
    counts = torch.bincount(s.test.y, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 37 and counts.sum() == 359


def test_digits_split_determinism():
    a, b, c = load_data("digits", seed=1), load_data("digits", seed=1), load_data("digits", seed=2)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    assert torch.equal(a.test.x, c.test.x)  # the test split never depends on seed
    assert not torch.equal(a.val.x, c.val.x)
    zero = load_data("digits", val_fraction=0)
    assert len(zero.val) == 0 and zero.val.x.shape == (0, 1, 8, 8)
    assert len(zero.train) == 1438 and torch.equal(zero.test.x, a.test.x)


# ---------------------------------------------------------------- arrays

rng = np.random.default_rng(0)
U8 = rng.integers(0, 256, size=(30, 6, 7), dtype=np.uint8)
F_CHW = rng.random((30, 3, 5, 5), dtype=np.float32)
U8_HWC = rng.integers(0, 256, size=(30, 6, 7, 3), dtype=np.uint8)
BINARY = rng.integers(0, 2, size=(30, 6, 6)).astype(np.int64)


@pytest.mark.parametrize("arr, shape, expected", [
    (U8, (1, 6, 7), U8[:, None] / 255.0),
    (F_CHW, (3, 5, 5), F_CHW),
    (U8_HWC, (3, 6, 7), U8_HWC.transpose(0, 3, 1, 2) / 255.0),
    (BINARY, (1, 6, 6), BINARY[:, None].astype(float)),
], ids=["uint8-NHW", "float-NCHW", "uint8-NHWC", "int-binary"])
def test_npy_images_round_trip(tmp_path, arr, shape, expected):
    np.save(tmp_path / "a.npy", arr)
    s = load_data(str(tmp_path / "a.npy"))
    assert s.info.kind == "image" and s.info.shape == shape and s.train.y is None
    assert s.info.extra["test_split"] == "random 20% (seed 0)"
    assert (len(s.train), len(s.val), len(s.test)) == (22, 2, 6)
    assert s.train.x.dtype == torch.float32
    match_rows(all_splits(s)[0], expected)


def test_npy_table_is_standardized_with_train_stats(tmp_path):
    table = rng.normal(5.0, 3.0, size=(50, 4)).astype(np.float32)
    table[:, 3] = 7.0  # constant column: std 0 -> 1
    np.save(tmp_path / "t.npy", table)
    s = load_data(str(tmp_path / "t.npy"))
    assert s.info.kind == "table" and s.info.shape == (4,)
    train_orig = s.info.denormalize(s.train.x)
    np.testing.assert_allclose(s.info.mean, train_orig.double().mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(s.train.x.mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(s.train.x[:, :3].std(0, correction=0).numpy(), 1, atol=1e-4)
    assert s.info.std[3] == 1.0 and s.info.mean[3] == pytest.approx(7.0)
    match_rows(s.info.denormalize(all_splits(s)[0]), table, atol=1e-4)


@pytest.mark.parametrize("key", ["x", "X", "data", "images"])
def test_npz_data_and_label_keys(tmp_path, key):
    x = rng.random((40, 5)).astype(np.float32)
    y = np.arange(40) % 4
    np.savez(tmp_path / "d.npz", **{key: x, "labels": y})
    s = load_data(str(tmp_path / "d.npz"), val_fraction=0.25)
    assert (len(s.train), len(s.val), len(s.test)) == (24, 8, 8)
    assert s.info.num_classes == 4 and s.info.class_names is None
    xs, ys = all_splits(s)
    order = match_rows(s.info.denormalize(xs), x, atol=1e-5)
    assert torch.equal(ys, torch.from_numpy(y[order]))
    assert torch.bincount(s.test.y).tolist() == [2, 2, 2, 2]  # stratified


def test_npz_official_test_split_and_string_labels(tmp_path):
    x, x_test = U8[:20], U8[20:]
    names = np.array(["dog", "cat", "emu", "cat"] * 5)
    np.savez(tmp_path / "d.npz", x=x, y=names, x_test=x_test, y_test=np.array(["emu"] * 10))
    s = load_data(str(tmp_path / "d.npz"))
    assert s.info.class_names == ["cat", "dog", "emu"] and s.info.num_classes == 3
    assert s.info.extra["test_split"] == "official"
    np.testing.assert_allclose(s.test.x.numpy(), x_test[:, None] / 255.0, atol=1e-7)  # order kept
    assert s.test.y.tolist() == [2] * 10
    assert (len(s.train), len(s.val)) == (18, 2)
    order = match_rows(torch.cat([s.train.x, s.val.x]), x[:, None] / 255.0)
    assert torch.cat([s.train.y, s.val.y]).tolist() == [{"cat": 0, "dog": 1, "emu": 2}[n] for n in names[order]]


# ---------------------------------------------------------------- image folders

def save_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_image_folder_with_class_subfolders(tmp_path):
    imgs = rng.integers(0, 256, size=(12, 9, 7), dtype=np.uint8)
    for i, img in enumerate(imgs):
        save_png(tmp_path / "imgs" / ("zebra" if i % 3 else "ant") / f"{i:02d}.png", img)
    (tmp_path / "imgs" / "ant" / "notes.txt").write_text("ignored")
    s = load_data(str(tmp_path / "imgs"), val_fraction=0)
    assert s.info.kind == "image" and s.info.shape == (1, 9, 7)
    assert s.info.class_names == ["ant", "zebra"] and s.info.num_classes == 2
    xs, ys = all_splits(s)
    order = match_rows(xs, imgs[:, None] / 255.0)
    assert ys.tolist() == [0 if i % 3 == 0 else 1 for i in order]


def test_flat_rgb_image_folder_is_unlabelled(tmp_path):
    imgs = rng.integers(0, 256, size=(10, 6, 8, 3), dtype=np.uint8)
    for i, img in enumerate(imgs):
        save_png(tmp_path / "flat" / f"{i}.png", img)
    Image.fromarray(np.full((6, 8, 3), 128, np.uint8)).save(tmp_path / "flat" / "gray.jpg")
    s = load_data(str(tmp_path / "flat"))
    assert s.info.shape == (3, 6, 8) and s.train.y is None and s.info.class_names is None
    xs, _ = all_splits(s)
    assert len(xs) == 11
    flat = xs.reshape(11, -1).std(1) < 0.02  # the JPEG: uniform gray, up to compression noise
    assert flat.sum() == 1 and abs(xs[flat].mean().item() - 128 / 255) < 0.02
    match_rows(xs[~flat], imgs.transpose(0, 3, 1, 2) / 255.0)


# ---------------------------------------------------------------- CSV

def write_csv(path, header, rows):
    lines = ([",".join(header)] if header else []) + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def test_csv_label_column_standardization_and_denormalize(tmp_path):
    feats = np.round(rng.normal([1.0, -20.0, 300.0], [0.5, 4.0, 50.0], size=(60, 3)), 3)
    species = np.array(["setosa", "virginica", "versicolor"])[np.arange(60) % 3]
    write_csv(tmp_path / "t.csv", ["a", "species", "b", "c"],
              [(f[0], sp, f[1], f[2]) for f, sp in zip(feats, species)])
    s = load_data(str(tmp_path / "t.csv"), label_column="species")
    assert s.info.kind == "table" and s.info.shape == (3,) and s.info.columns == ["a", "b", "c"]
    assert s.info.class_names == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(s.train.x.mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(s.train.x.std(0, correction=0).numpy(), 1, atol=1e-4)
    train_orig = s.info.denormalize(s.train.x).double()
    np.testing.assert_allclose(s.info.mean, train_orig.mean(0).numpy(), rtol=1e-5)
    np.testing.assert_allclose(s.info.std, train_orig.std(0, correction=0).numpy(), rtol=1e-4)
    xs, ys = all_splits(s)
    order = match_rows(s.info.denormalize(xs), feats, atol=1e-3)
    assert [s.info.class_names[k] for k in ys.tolist()] == species[order].tolist()
    # a saved DataInfo (JSON round trip) applies the same normalization to new data
    info = DataInfo.from_dict(s.info.to_dict())
    new = feats[:10] + 1.0
    write_csv(tmp_path / "new.csv", ["a", "b", "c"], new)
    s2 = load_data(str(tmp_path / "new.csv"), info=info, val_fraction=0)
    assert s2.info.mean == s.info.mean and s2.info.std == s.info.std
    match_rows(info.denormalize(all_splits(s2)[0]), new, atol=1e-3)


def test_csv_numeric_labels_sort_by_value_and_headerless(tmp_path):
    write_csv(tmp_path / "n.csv", ["x", "y", "label"], [(i, i * 2, [2, 10, 1][i % 3]) for i in range(30)])
    s = load_data(str(tmp_path / "n.csv"), label_column="label")
    assert s.info.class_names == ["1", "2", "10"]
    write_csv(tmp_path / "h.csv", None, [(i, i * 0.5, i % 2) for i in range(30)])
    s = load_data(str(tmp_path / "h.csv"), label_column="2")
    assert s.info.columns == ["0", "1"] and s.info.class_names == ["0", "1"] and len(all_splits(s)[0]) == 30


# ---------------------------------------------------------------- IDX

def write_idx_dataset(folder, n_train=50, n_test=10, compress=True, size=28, seed=0):
    g = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": g.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": g.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        write_idx(folder / (stem + (".gz" if compress else "")), arr, compress=compress)
    return arrays


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("subfolder", [True, False], ids=["name-subfolder", "flat"])
def test_mnist_from_data_dir(tmp_path, compress, subfolder):
    folder = tmp_path / "dd" / ("mnist" if subfolder else "")
    arrays = write_idx_dataset(folder, compress=compress)
    s = load_data("mnist", data_dir=tmp_path / "dd", download=False)
    assert (len(s.train), len(s.val), len(s.test)) == (45, 5, 10)
    assert s.info.name == "mnist" and s.info.shape == (1, 28, 28) and s.info.num_classes == 10
    assert s.info.extra["path"] == str(folder)
    np.testing.assert_allclose(s.test.x.numpy(), arrays["t10k-images-idx3-ubyte"][:, None] / 255.0, atol=1e-7)
    assert s.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    order = match_rows(torch.cat([s.train.x, s.val.x]), arrays["train-images-idx3-ubyte"][:, None] / 255.0)
    assert torch.cat([s.train.y, s.val.y]).tolist() == (order % 10).tolist()


def test_idx_search_order(tmp_path, monkeypatch):
    write_idx_dataset(tmp_path / "xdg" / "vaekit" / "fashion-mnist", seed=1)
    write_idx_dataset(tmp_path / "system" / "fashion-mnist", seed=2, n_train=20)
    env = write_idx_dataset(tmp_path / "env" / "fashion-mnist", seed=3, n_test=7)
    s = load_data("fashion-mnist", download=False)
    assert s.info.extra["path"] == str(tmp_path / "xdg" / "vaekit" / "fashion-mnist")  # cache before system
    assert s.info.class_names[0] == "T-shirt/top" and s.info.class_names[9] == "Ankle boot"
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(tmp_path / "env"))
    s = load_data("fashion-mnist", download=False)
    np.testing.assert_allclose(s.test.x.numpy(), env["t10k-images-idx3-ubyte"][:, None] / 255.0, atol=1e-7)
    write_idx_dataset(tmp_path / "arg", seed=4, n_test=3)
    assert len(load_data("fashion-mnist", data_dir=tmp_path / "arg", download=False).test) == 3


def test_idx_folder_and_single_file_as_paths(tmp_path):
    arrays = write_idx_dataset(tmp_path / "idx", n_train=30, compress=False)
    s = load_data(str(tmp_path / "idx"))
    assert s.info.extra["test_split"] == "official" and len(s.test) == 10 and s.info.num_classes == 10
    s = load_data(str(tmp_path / "idx" / "train-images-idx3-ubyte"))
    assert (len(s.train), len(s.val), len(s.test)) == (22, 2, 6)
    xs, ys = all_splits(s)
    order = match_rows(xs, arrays["train-images-idx3-ubyte"][:, None] / 255.0)
    assert ys.tolist() == (order % 10).tolist()


def test_idx_reader_dtypes_round_trip(tmp_path):
    for arr in (np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 5, np.linspace(0, 1, 6).astype(np.float32)):
        write_idx(tmp_path / "a.gz", arr, compress=True)
        out = read_idx(tmp_path / "a.gz")
        assert out.dtype == arr.dtype and np.array_equal(out, arr)


def corrupt_idx(kind):
    def build(tmp_path):
        folder = tmp_path / "dd"
        write_idx_dataset(folder, compress=False)
        labels = folder / "train-labels-idx1-ubyte"
        if kind == "magic":
            (folder / "train-images-idx3-ubyte").write_bytes(b"\x12\x34\x56\x78" + b"\0" * 100)
        elif kind == "truncated":
            path = folder / "train-images-idx3-ubyte"
            path.write_bytes(path.read_bytes()[:-5])
        elif kind == "count":
            write_idx(labels, np.zeros(49, np.uint8))
        elif kind == "swapped":
            write_idx(labels, np.zeros((50, 28, 28), np.uint8))
        elif kind == "partial":
            (folder / "t10k-labels-idx1-ubyte").unlink()
        elif kind == "gzip":
            labels.unlink()
            (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0" * 200)[:15])
        return "mnist", {"data_dir": folder, "download": False}
    return build


# ---------------------------------------------------------------- errors

def npy(arr, name="a.npy", **kwargs):
    def build(tmp_path):
        np.save(tmp_path / name, arr)
        return str(tmp_path / name), kwargs
    return build


def npz(**arrays):
    def build(tmp_path):
        np.savez(tmp_path / "d.npz", **arrays)
        return str(tmp_path / "d.npz"), {}
    return build


def file_bytes(name, content, **kwargs):
    def build(tmp_path):
        (tmp_path / name).write_bytes(content)
        return str(tmp_path / name), kwargs
    return build


def csv_file(text, **kwargs):
    return file_bytes("t.csv", text.encode(), **kwargs)


def truncated(build):
    def wrapped(tmp_path):
        source, kwargs = build(tmp_path)
        with open(source, "r+b") as f:
            f.truncate(f.seek(0, 2) - 7)
        return source, kwargs
    return wrapped


def nan_table():
    t = np.ones((20, 3), np.float32)
    t[3, 1] = t[7, 2] = np.nan
    return t


def image_tree(files, dirs=()):
    """Build a folder 'imgs' with blank PNGs {relative path: array shape} and empty dirs."""
    def build(tmp_path):
        for rel, shape in files.items():
            save_png(tmp_path / "imgs" / rel, np.zeros(shape, np.uint8))
        for d in dirs:
            (tmp_path / "imgs" / d).mkdir(parents=True)
        (tmp_path / "imgs").mkdir(exist_ok=True)
        return str(tmp_path / "imgs"), {}
    return build


def named(name, **kwargs):
    return lambda tmp_path: (name, kwargs)


ERROR_CASES = [
    ("unknown-name", named("nosuchset"), ["unknown dataset 'nosuchset'", "digits, mnist, fashion-mnist", ".npz"]),
    ("missing-path", named("missing/x.npy"), ["data path 'missing/x.npy' does not exist"]),
    ("corrupt-npy", file_bytes("bad.npy", b"not numpy"), ["could not read", "bad.npy", "not a .npy file"]),
    ("pickled-npy", npy(np.array([{"a": 1}], dtype=object)), ["holds Python objects"]),
    ("truncated-npy", truncated(npy(np.ones((50, 4)), "t.npy")), ["could not read", "t.npy"]),
    ("corrupt-npz", file_bytes("bad.npz", b"PK\x03\x04junk"), ["could not read", "bad.npz", ".npz archive"]),
    ("unsupported", file_bytes("a.txt", b"1 2 3"), ["unsupported file type '.txt'", ".csv"]),
    ("nan", npy(nan_table()), ["2 NaN/missing and 0 infinite", "2 example(s) (indices 3, 7)", "clean the data"]),
    ("inf-csv", csv_file("a,b\n1,2\n3,inf\n4,5\n"), ["0 NaN/missing and 1 infinite", "lines 3", "column(s) 'b'"]),
    ("missing-csv-cell", csv_file("a,b\n1,2\n3,\n4,5\n"), ["1 NaN/missing", "lines 3", "'b'"]),
    ("empty-array", npy(np.zeros((0, 5), np.float32)), ["is empty", "(0, 5)"]),
    ("empty-csv", csv_file(""), ["is empty"]),
    ("header-only-csv", csv_file("a,b\n"), ["no data rows"]),
    ("label-column-missing", csv_file("a,b\n1,2\n", label_column="label"),
     ["no column 'label'", "its columns are: a, b"]),
    ("non-numeric-column", csv_file("a,color\n1,red\n2,blue\n"),
     ["column 'color' is not numeric", "'red' on line 2", "label_column='color'"]),
    ("ragged-csv", csv_file("a,b\n1,2\n3\n"), ["line 3 has 1 fields", "2 columns"]),
    ("too-few", npy(np.ones((3, 4), np.float32)),
     ["has only 3 example(s), too few for a 20% test split, a 10% validation split and a training split",
      "train=2, val=0, test=1", "at least 6 examples", "val_fraction=0"]),
    ("float-images-out-of-range", npy(np.full((10, 8, 8), 3.0)), ["values lie in [3, 3]", "[0, 1]", "(N, D)"]),
    ("int-images-out-of-range", npy(np.full((10, 8, 8), 1000)), ["[1000, 1000]", "scale it"]),
    ("ambiguous-4d", npy(np.zeros((5, 7, 7, 7), np.float32)), ["(5, 7, 7, 7)", "not a layout"]),
    ("1d", npy(np.zeros(5, np.float32)), ["1-D array", "reshape it to (N, 1)"]),
    ("strings", npy(np.array([["a", "b"]])), ["not numbers"]),
    ("image-size-mismatch", image_tree({"0.png": (8, 8), "1.png": (9, 8)}),
     ["differ in size", "1.png' is 8x9 with 1 channel", "0.png' is 8x8"]),
    ("image-mode-mismatch", image_tree({"0.png": (8, 8), "1.png": (8, 8, 3)}),
     ["color mode", "3 channels", "grayscale"]),
    ("images-and-folders", image_tree({"c/0.png": (8, 8), "top.png": (8, 8)}), ["mixes images", "class sub-folders"]),
    ("empty-class-folder", image_tree({"full/a.png": (8, 8)}, dirs=["empty"]), ["class folder", "empty' holds no"]),
    ("no-images", image_tree({}), ["holds no .png/.jpg/.jpeg/.webp images"]),
    ("label-column-on-npy", npy(np.ones((9, 2)), label_column="y"), ["only applies to CSV"]),
    ("label-column-on-named", named("digits", label_column="y"), ["already has its labels"]),
    ("val-fraction", named("digits", val_fraction=1.0), ["val_fraction must be", "got 1.0"]),
    ("label-count", npz(x=np.ones((5, 2)), y=np.arange(4)), ["5 examples but 4 labels"]),
    ("negative-labels", npz(x=np.ones((5, 2)), y=-np.arange(5)), ["include -4", ">= 0"]),
    ("test-labels-only", npz(x=np.ones((9, 2)), y=np.arange(9) % 2, x_test=np.ones((3, 2))),
     ["labels for only one of the train and test arrays"]),
    ("test-shape", npz(x=np.ones((9, 2)), x_test=np.ones((3, 5))), ["x_test has examples of shape (5,)"]),
    ("mnist-not-found", named("mnist", download=False),
     ["dataset 'mnist' was not found", "download is off", "xdg/vaekit/mnist", "system/mnist", "--data-dir",
      "VAEKIT_DATA_DIR", "train-images-idx3-ubyte[.gz]"]),
    ("fashion-not-found", named("fashion-mnist", download=False), ["apt-get install dataset-fashion-mnist"]),
    ("mnist-partial", corrupt_idx("partial"),
     ["dataset 'mnist' was not found", "dd (has only some files; missing t10k-labels-idx1-ubyte)"]),
    ("fashion-download-fails", named("fashion-mnist"),
     ["dataset 'fashion-mnist' was not found and downloading it failed", "http://127.0.0.1:9/", "--data-dir"]),
    ("data-dir-missing", lambda p: ("mnist", {"data_dir": p / "nope"}),
     ["data directory", "nope' (--data-dir) does not exist"]),
    ("idx-bad-magic", corrupt_idx("magic"), ["is not an IDX file", "12345678"]),
    ("idx-truncated", corrupt_idx("truncated"), ["truncated or corrupt", "(50, 28, 28)", "39200 bytes", "39195"]),
    ("idx-count-mismatch", corrupt_idx("count"), ["has 50 images but", "has 49 labels"]),
    ("idx-swapped", corrupt_idx("swapped"), ["should hold labels", "0x0801", "(50, 28, 28)"]),
    ("idx-corrupt-gzip", corrupt_idx("gzip"), ["corrupt or truncated gzip"]),
    ("idx-folder-partial", lambda p: (str(corrupt_idx("partial")(p)[1]["data_dir"]), {}),
     ["labels for only one of train and t10k"]),
]


@pytest.mark.parametrize("build, expected", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_errors_name_the_input_and_the_fix(tmp_path, build, expected):
    source, kwargs = build(tmp_path)
    with pytest.raises(VaekitError) as err:
        load_data(source, **kwargs)
    for text in expected:
        assert text in str(err.value)


def test_info_shape_mismatch(tmp_path):
    info = load_data("digits").info
    info.shape = (1, 28, 28)
    np.save(tmp_path / "foo.npy", np.zeros((20, 8, 8), np.uint8))
    with pytest.raises(VaekitError) as err:
        load_data(str(tmp_path / "foo.npy"), info=info)
    source = str(tmp_path / "foo.npy")
    assert str(err.value) == (f"data '{source}' has examples of shape (1, 8, 8) but the run was trained on "
                              "(1, 28, 28); use data of the same shape as the training data")


def test_info_column_mismatch(tmp_path):
    write_csv(tmp_path / "a.csv", ["a", "b"], [(i, i % 3) for i in range(20)])
    write_csv(tmp_path / "b.csv", ["b", "a"], [(i, i % 3) for i in range(20)])
    info = load_data(str(tmp_path / "a.csv")).info
    with pytest.raises(VaekitError, match=r"columns \['b', 'a'\] but the run was trained on columns \['a', 'b'\]"):
        load_data(str(tmp_path / "b.csv"), info=info)
