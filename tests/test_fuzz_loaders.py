"""Every file vaekit reads, fuzzed with hypothesis: a small valid file is written, then mutated
(cut short, bytes flipped or overwritten, sizes in headers made absurd, wrong dtypes, NaN/Inf,
mismatched labels, empty files, folders where files belong, symlink loops, non-UTF-8 names and
text). Each load either returns data or raises a VaekitError that names the file; nothing else
escapes, no warning reaches the user, and memory and time stay bounded."""
from __future__ import annotations

import functools
import gzip
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st
from PIL import Image

from vaekit import rundir
from vaekit.app.evaluations import read_evaluations
from vaekit.data import load_data
from vaekit.data.idx import write_idx
from vaekit.errors import VaekitError

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
HUGE = 10**12  # elements a header claims: terabytes if anything believed it


# -- mutations of a valid file ------------------------------------------------------------------
@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """``valid`` with up to three edits: cut, bit flip, byte overwrite, a big little/big-endian
    integer written over a header field, bytes inserted, or emptied."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["cut", "flip", "byte", "int", "insert", "empty"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "cut":
            del data[at:]
        elif op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and data:
            data[at] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, ord("'"), ord("{"), ord(","), ord("\n")]))
        elif op == "int":
            value = draw(st.sampled_from([HUGE, 2**31 - 1, 2**32 - 1, 2**63 - 1, 2**64 - 1, 0]))
            fmt = draw(st.sampled_from(["<I", ">I", "<Q", ">Q"]))
            packed = struct.pack(fmt, value % (1 << (8 * struct.calcsize(fmt))))
            data[at:at + len(packed)] = packed
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "empty":
            data = bytearray()
    return bytes(data)


def loads_or_names(call, path) -> object:
    """Run ``call()``: it returns, or raises a VaekitError naming ``path``. Warnings are errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            result = call()
        except VaekitError as e:
            assert str(path) in str(e) or Path(path).name in str(e), str(e)
            event("VaekitError")
            return None
    event("loaded")
    return result


@pytest.fixture(autouse=True, scope="module")
def _scratch(tmp_path_factory):
    global SCRATCH
    SCRATCH = tmp_path_factory.mktemp("fuzz")


def fresh_dir() -> Path:
    """A new empty folder (hypothesis runs many examples inside one test call)."""
    return Path(tempfile.mkdtemp(dir=SCRATCH))


def check_splits(splits) -> None:
    """Data that loads is usable: finite float32 examples, one label per example."""
    for part in (splits.train, splits.val, splits.test):
        x = part.x if isinstance(part.x, torch.Tensor) else part.x[:]
        assert x.dtype == torch.float32 and torch.isfinite(x).all()
        assert part.y is None or len(part.y) == len(part)
    assert splits.info.num_classes is None or 1 <= splits.info.num_classes <= 100_000


def load(path, **kw):
    splits = load_data(str(path), val_fraction=0.2, **kw)
    check_splits(splits)
    return splits


def npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


IMAGES = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)
LABELS = np.arange(10) % 3
TABLE = np.linspace(-1, 1, 10 * 3).reshape(10, 3)


# -- IDX ----------------------------------------------------------------------------------------
def idx_bytes(arr, compress=False) -> bytes:
    path = fresh_dir() / "f"
    write_idx(path, arr, compress=compress)
    return path.read_bytes()


@FUZZ
@given(st.data(), st.booleans())
def test_idx_files(data, compress):
    folder = fresh_dir()
    images, labels = folder / "train-images-idx3-ubyte", folder / "train-labels-idx1-ubyte"
    images.write_bytes(data.draw(mutated(idx_bytes(IMAGES, compress))))
    labels.write_bytes(data.draw(st.one_of(st.just(idx_bytes(LABELS.astype(np.uint8))),
                                           mutated(idx_bytes(LABELS.astype(np.uint8)))), "labels"))
    loads_or_names(lambda: load(images), folder)  # a message may name the labels file beside it
    loads_or_names(lambda: load(folder), folder)


# -- .npy, .npz and shard folders ---------------------------------------------------------------
DTYPES = ["|u1", "<i8", "<f4", ">f8", "|b1", "<c8", "|O", "<U3", "|S2", "<M8[s]", "|V4", "<f2", "[('a', '<f4')]"]
SHAPES = [(10, 3), (10, 4, 4), (HUGE, 3), (3, HUGE), (2**62, 2**62), (0, 3), (10,), (), (-1, 3),
          (10, 1, 4, 4), (10, 9, 9, 9), "None", "'x'"]


@st.composite
def npy_files(draw) -> bytes:
    """A valid .npy mutated, a crafted header (any dtype or shape, with a body of any length), or
    a real array of a wrong or hostile kind (complex, strings, bool, huge ints, NaN/Inf)."""
    kind = draw(st.sampled_from(["mutated", "header", "array"]))
    if kind == "mutated":
        return draw(mutated(npy_bytes(draw(st.sampled_from([IMAGES, TABLE.astype(np.float32)])))))
    if kind == "header":
        descr, shape = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(SHAPES))
        fortran = draw(st.booleans())
        header = f"{{'descr': {descr if descr.startswith('[') else repr(descr)}, 'fortran_order': {fortran}, " \
                 f"'shape': {shape}, }}"
        version = draw(st.sampled_from([1, 2, 3]))
        header = header.ljust(draw(st.sampled_from([len(header) + 1, 70000])))[:-1] + "\n"
        version = 2 if len(header) > 65535 and version == 1 else version
        length = struct.pack("<H" if version == 1 else "<I", len(header))
        return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode("latin1") + \
            draw(st.binary(max_size=600))
    values = draw(st.sampled_from([
        IMAGES.astype(np.complex64), IMAGES.astype(str), IMAGES > 100, IMAGES.astype(np.int64) * 2**55,
        np.where(IMAGES > 50, np.nan, 0.5), np.where(IMAGES > 50, np.inf, 0.5).astype(np.float32),
        -IMAGES.astype(np.int16), IMAGES.astype(np.float16) / 255, np.where(TABLE > 0, np.float64(np.inf), TABLE),
        np.asfortranarray(TABLE), TABLE.astype(">f8"), IMAGES.astype(np.uint64) + np.uint64(2**63)]))
    return npy_bytes(values)


@FUZZ
@given(npy_files(), st.sampled_from([None, True]))
def test_npy_files(content, stream):
    path = fresh_dir() / "x.npy"
    path.write_bytes(content)
    loads_or_names(lambda: load(path, stream=stream), path)


LABEL_ARRAYS = [LABELS, LABELS[:5], LABELS.reshape(5, 2), LABELS - 1, LABELS + 0.5, LABELS.astype(str),
                np.full(10, 2**62), np.full(10, 1e30), np.full(10, 2**63 + 5, np.uint64), np.full(10, np.nan), LABELS.astype(np.complex64), np.array(["a", "b"] * 5, "O")]


@FUZZ
@given(st.data())
def test_npz_archives(data):
    path = fresh_dir() / "d.npz"
    buf = io.BytesIO()
    y = data.draw(st.sampled_from(LABEL_ARRAYS), "y")
    arrays = {"x": IMAGES, "y": y} if y.dtype != object else {"x": IMAGES}
    if data.draw(st.booleans(), "with test"):
        arrays.update(x_test=IMAGES[:4], y_test=LABELS[:data.draw(st.integers(0, 4), "test labels")])
    (np.savez_compressed if data.draw(st.booleans(), "compressed") else np.savez)(buf, **arrays)
    content = buf.getvalue()
    if data.draw(st.booleans(), "member"):  # a hostile .npy inside a valid archive
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("x.npy", data.draw(npy_files(), "member"))
        content = buf.getvalue()
    path.write_bytes(data.draw(st.one_of(st.just(content), mutated(content)), "archive"))
    loads_or_names(lambda: load(path), path)


@FUZZ
@given(st.data())
def test_shard_folders(data):
    folder = fresh_dir() / "shards"
    folder.mkdir()
    for i in range(2):
        (folder / f"x-{i}.npy").write_bytes(npy_bytes(IMAGES))
        (folder / f"y-{i}.npy").write_bytes(npy_bytes(LABELS))
    target = data.draw(st.sampled_from(["x-0.npy", "x-1.npy", "y-1.npy"]), "file")
    hostile = data.draw(st.sampled_from(["content", "labels", "name", "folder", "loop", "none"]), "how")
    if hostile == "content":
        (folder / target).write_bytes(data.draw(npy_files(), "content"))
    elif hostile == "labels":
        (folder / target).write_bytes(npy_bytes(data.draw(st.sampled_from(LABEL_ARRAYS), "labels")))
    elif hostile == "name":
        name = data.draw(st.sampled_from(["x-99999999999999999999.npy", "x-٣.npy", "y-7.npy", "x-0.npy\n",
                                          "x-00.npy", "x-\udcff.npy", "y-\u0662.npy"]), "name")
        (folder / name).write_bytes(npy_bytes(IMAGES))
    elif hostile == "folder":
        (folder / target).unlink()
        (folder / target).mkdir()
    elif hostile == "loop":
        (folder / target).unlink()
        (folder / target).symlink_to(folder / target)
        (folder / "x-2.npy").symlink_to(folder)
    loads_or_names(lambda: load(folder, stream=data.draw(st.sampled_from([None, True]), "stream")), folder)


# -- CSV ----------------------------------------------------------------------------------------
CSV = "a,b,label\n" + "".join(f"{i * 0.5},{-i},{'cat' if i % 2 else 'dog'}\n" for i in range(20))


@FUZZ
@given(st.data())
def test_csv_tables(data):
    text = data.draw(st.one_of(
        mutated(CSV.encode()),
        st.sampled_from([b"", b"\n\n", "é,b\n1,2\n".encode("latin1"), b"a,a\n1,2\n" * 3, b"a,b\n1\n",
                         b"a,b\nnan,inf\n" * 5, b'a,b\n"1,2\n', b"a\x00b,c\n1,2\n",
                         ("a,b\n" + "1," * 20000 + "\n").encode(), b"a,b\n" + b"9" * 200000 + b",1\n",
                         b"1e999,2\n" * 12, ("a,b,label\n" + "1,2,\n" * 12).encode()])), "csv")
    suffix = data.draw(st.sampled_from([".csv", ".tsv"]), "suffix")
    path = fresh_dir() / ("t\udcff" + suffix if data.draw(st.booleans(), "odd name") else "t" + suffix)
    path.write_bytes(text if suffix == ".csv" else text.replace(b",", b"\t"))
    label = data.draw(st.sampled_from([None, "label", "label", "label", "b", "nope"]), "label column")
    loads_or_names(lambda: load_data(str(path), val_fraction=0.2, label_column=label), path)


# -- Parquet / Feather / .h5ad (the formats extra) ----------------------------------------------
@functools.cache
def arrow_bytes(kind: str) -> bytes:
    """A small valid Parquet or Feather table (a float, an int, a bool, a string label)."""
    pa, pq, feather = (pytest.importorskip(m) for m in ("pyarrow", "pyarrow.parquet", "pyarrow.feather"))
    table = pa.table({"a": np.linspace(0, 1, 20), "n": pa.array(range(20)),
                      "flag": [i % 2 == 0 for i in range(20)], "label": ["cat", "dog"] * 10})
    buf = io.BytesIO()
    (pq.write_table if kind == ".parquet" else feather.write_feather)(table, buf)
    return buf.getvalue()


@settings(FUZZ, max_examples=80)
@given(st.data())
def test_arrow_tables(data):
    suffix = data.draw(st.sampled_from([".parquet", ".feather"]), "suffix")
    content = data.draw(st.one_of(st.just(arrow_bytes(suffix)), mutated(arrow_bytes(suffix)), st.binary(max_size=64),
                                  st.sampled_from([b"PAR1", b"PAR1" + bytes(32) + b"PAR1", b"ARROW1\x00\x00"])),
                        "file")
    path = fresh_dir() / ("t" + suffix)
    path.write_bytes(content)
    label = data.draw(st.sampled_from([None, "label", "label", "a", "nope"]), "label column")
    stream = data.draw(st.sampled_from([None, True]), "stream")
    loads_or_names(lambda: load(path, label_column=label, stream=stream), path)


@functools.cache
def h5ad_bytes(fmt: str) -> bytes:
    """A small valid .h5ad file: counts in X (CSR or dense) and a layer, a categorical obs column."""
    anndata, sparse = pytest.importorskip("anndata"), pytest.importorskip("scipy.sparse")
    import pandas as pd

    x = np.random.default_rng(0).poisson(1, (20, 5)).astype(np.float32)
    path = fresh_dir() / "a.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = anndata.AnnData(sparse.csr_matrix(x) if fmt == "csr" else x,
                                obs=pd.DataFrame({"cell": pd.Categorical(["a", "b"] * 10)},
                                                 index=[str(i) for i in range(20)]))
        adata.layers["counts"] = x
        adata.write_h5ad(path)
    return path.read_bytes()


def h5ad_wrong_schema(kind: str) -> bytes:
    """HDF5 files that are not AnnData as vaekit reads it: no X, X 3-D or of strings, a broken CSR."""
    h5py = pytest.importorskip("h5py")
    path = fresh_dir() / "w.h5ad"
    with h5py.File(path, "w") as f:
        if kind == "no X":
            f["other"] = np.zeros(3)
        elif kind == "3-D":
            f["X"] = np.zeros((4, 2, 2))
        elif kind == "strings":
            f["X"] = np.array([[b"a", b"b"]] * 4)
        elif kind == "csr":
            g = f.create_group("X")
            g.attrs["encoding-type"], g.attrs["shape"] = "csr_matrix", (4, 3)
            g["data"], g["indices"], g["indptr"] = np.ones(4), np.array([0, 9, 1, 2]), np.array([0, 1, 2, 3, 4])
        elif kind == "indptr":
            g = f.create_group("X")
            g.attrs["encoding-type"], g.attrs["shape"] = "csr_matrix", (4, 3)
            g["data"], g["indices"], g["indptr"] = np.ones(4), np.zeros(4, int), np.array([0, 3, 1, 2, 4])
    return path.read_bytes()


@settings(FUZZ, max_examples=40)
@given(st.data())
def test_h5ad_files(data):
    """Truncated files, random bytes and wrong schemas (bit flips inside HDF5 metadata are left to HDF5's
    own fuzzing: the C library is not hardened against them)."""
    fmt = data.draw(st.sampled_from(["csr", "dense"]), "format")
    valid = h5ad_bytes(fmt)
    content = data.draw(st.one_of(
        st.integers(0, len(valid)).map(lambda cut: valid[:cut]),
        st.binary(max_size=256),
        st.just(valid),
        st.sampled_from(["no X", "3-D", "strings", "csr", "indptr"]).map(h5ad_wrong_schema)), "file")
    path = fresh_dir() / "cells.h5ad"
    path.write_bytes(content)
    layer = data.draw(st.sampled_from([None, "counts", "nope"]), "layer")
    label = data.draw(st.sampled_from([None, "cell", "nope"]), "label column")
    stream = data.draw(st.sampled_from([None, True]), "stream")
    loads_or_names(lambda: load(path, layer=layer, label_column=label, stream=stream), path)


# -- image folders ------------------------------------------------------------------------------
def png_bytes(mode="L", size=(4, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, format="PNG")
    return buf.getvalue()


@functools.cache
def big_png(side: int) -> bytes:
    """A 1-bit PNG whose header says side x side pixels (tiny on disk: all pixels are equal)."""
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")
    return buf.getvalue()




@FUZZ
@given(st.data())
def test_image_folders(data):
    folder = fresh_dir() / "images"
    for cls in ("cat", "dog"):
        (folder / cls).mkdir(parents=True)
        for i in range(5):
            (folder / cls / f"{i}.png").write_bytes(png_bytes())
    victim = folder / data.draw(st.sampled_from(["cat", "dog"]), "class") / "0.png"
    hostile = data.draw(st.sampled_from(["bytes", "mode", "bomb", "loop", "folder", "name", "empty class"]), "how")
    if hostile == "bytes":
        victim.write_bytes(data.draw(mutated(png_bytes()), "png"))
    elif hostile == "mode":
        victim.write_bytes(png_bytes(data.draw(st.sampled_from(["RGB", "RGBA", "I;16", "1", "P", "LA"]),
                                               "mode"), data.draw(st.sampled_from([(4, 4), (5, 4)]), "size")))
    elif hostile == "bomb":
        victim.write_bytes(big_png(10_000))  # 100 M pixels: past PIL's warning threshold of 89 M
    elif hostile == "loop":
        (folder / "cat" / "self").symlink_to(folder)
        (folder / "loop").symlink_to(folder)
    elif hostile == "folder":
        victim.unlink()
        victim.mkdir()
    elif hostile == "name":
        (folder / "cat" / "\udcff.png").write_bytes(png_bytes())
        (folder / "d\udcfe").mkdir()
        (folder / "d\udcfe" / "1.png").write_bytes(png_bytes())
    elif hostile == "empty class":
        (folder / "empty").mkdir()
    loads_or_names(lambda: load(folder), folder)


# -- what benchmarks/fuzz_atheris.py found (coverage-guided), kept as regression cases ----------------
def py2_header_npy() -> bytes:
    """A .npy whose header numpy parses only after its Python 2 repair (its padding ends in a line of
    spaces, not a newline): numpy loads it but warns. Found by atheris."""
    header = ("{'descr': '|u1', 'fortran_order': False, 'shape': (10, 4, 4), }   " + "\n" * 11).ljust(118)
    return npy_raw(header, IMAGES.tobytes())


def npy_raw(header: str, body: bytes) -> bytes:
    """A version 1.0 .npy of header text ``header`` (a dict, padded as numpy pads it unless it ends in a
    newline already) and data ``body``."""
    header = header if header.endswith("\n") or len(header) == 118 else header.ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


def npz_with_bad_utf8_name(where: str) -> bytes:
    """An .npz whose member name is flagged UTF-8 but is not, in the central directory or only in the
    member's local header."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x\u00e9.npy", npy_bytes(IMAGES))  # a non-ASCII name: zipfile sets the UTF-8 flag
    data = bytearray(buf.getvalue())
    at = data.index(b"x\xc3\xa9", data.index(b"PK\x01\x02") if where == "central" else 0)
    data[at + 1] = 0xD6  # 0xD6 0xA9 ... is fine; make the continuation byte invalid too
    data[at + 2] = 0x28
    return bytes(data)


ATHERIS_FINDINGS = [  # (file name, content, None if it loads, else a part of the VaekitError)
    ("x.npy", py2_header_npy(), None),  # was: numpy's UserWarning "... created on Python 2" reached the user
    ("x.npy", npy_bytes(np.full((10, 3), 1.7e98)), "30 value(s) beyond float32's range"),  # was: RuntimeWarning
    ("t.csv", b"a,b,0\n0.5,-" + b"3" * 80 + b",1\n", "1 value(s) beyond float32's range"),  # overflow in cast
    ("x.npy", npy_raw("{'descr': '<a4', 'fortran_order': False, 'shape': (10, 3), }", bytes(120)),
     "holds values of type |S4, not numbers"),  # was: numpy's DeprecationWarning on the alias 'a'
    ("x.npy", npy_raw("{'descr': '4f4', 'fortran_order': False, 'shape': (1, 3, 1), }", bytes(48)),
     "each of its elements is an array of shape (4,) (float32 values)"),  # was: ValueError from reshape
    ("train-images-idx3-ubyte", bytes.fromhex("0000080440000000000000000004000405060740"),
     "holds no data: its header says shape (1073741824, 0, 262148, 84281152)"),  # was: numpy's "array is too big"
    ("d.npz", npz_with_bad_utf8_name("central"), "as an .npz archive ('utf-8' codec can't decode"),
    ("d.npz", npz_with_bad_utf8_name("local"), "as an .npz archive ('utf-8' codec can't decode"),
]


@pytest.mark.parametrize("name, content, refused, stream", [
    case + (stream,) for case in ATHERIS_FINDINGS for stream in ([None, True] if case[0].endswith(".npy") else [None])])
def test_atheris_findings(tmp_path, name, content, refused, stream):
    path = tmp_path / name
    path.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if refused is None:
            assert load_data(str(path), stream=stream).info.shape == (1, 4, 4)
        else:
            with pytest.raises(VaekitError, match=re.escape(refused)) as e:
                load_data(str(path), stream=stream)
            assert str(path) in str(e.value)


# 66 bytes of GIF claiming 2308 x 35209 pixels (81 M: under PIL's bomb limit of 89 M); decoded as float32
# it took over 2 GB (atheris' -rss_limit_mb=2048)
GIF_81M_PIXELS = (b'GIF87a\x04\x00\x89\x89\x89\x89\x00\x08\t\x00\x01\x08\x1c\x04\x00\x80\x00\x00\x00\x00\x00\x00\x00'
                  b'\x00,\x00\t\x00\x00\x04\x00\x04\x00\x89\x89\x89\x80\x80\x00;\x89\x89\x89\x89\x89\x89\x00\x08\t\x00'
                  b'\x01\x08\x1cH\xb0 \x80\x80\x00;')


def test_atheris_image_of_81m_pixels(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "0.png").write_bytes(GIF_81M_PIXELS)
    (tmp_path / "cat" / "1.png").write_bytes(png_bytes())
    with pytest.raises(VaekitError, match=re.escape(f"image '{tmp_path / 'cat' / '0.png'}' is too large to load "
                                                    "(2308x35209 pixels, more than the 16777216 vaekit loads")):
        load_data(str(tmp_path))


# -- a run's files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    """The valid files of a small run (weights, state, config, metrics) and its model."""
    import vaekit

    run = tmp_path_factory.mktemp("run") / "r"
    model = vaekit.train("digits", out=run, epochs=1, hidden=[8], latent_dim=2, batch_size=512, progress=False)
    return run, model


RUN_FILES = ["config.json", "state.pt", "model.safetensors", "metrics.jsonl", "evaluation.json"]
JSON_HOSTILE = [b"[" * 100000, b"1" * 5000, b'{"a": NaN}', b"\xff\xfe{}", b"null", b"[]", b'{"model": 5}',
                b'"\\ud800"', b"{" + b'"a":' * 3 + b"}"]


def read_run_file(run, model, name: str):
    if name == "config.json":
        return rundir.read_config(run)
    if name == "state.pt":
        return rundir.load_state(run / name)
    if name == "model.safetensors":
        return rundir.load_weights(run / name, model)
    if name == "metrics.jsonl":
        return rundir.read_metrics(run / name)
    return read_evaluations(run / name)


@FUZZ
@given(st.data())
def test_run_files(run_files, data):
    run, model = run_files
    name = data.draw(st.sampled_from(RUN_FILES), "file")
    copy = fresh_dir() / "run"
    copy.mkdir()
    for f in RUN_FILES[:4]:
        (copy / f).write_bytes((run / f).read_bytes())
    valid = (run / name).read_bytes() if name != "evaluation.json" else b'{"digits:test:last:seed0": {"elbo": -1}}'
    how = data.draw(st.sampled_from(["mutated", "json", "folder", "loop"]), "how")
    if how == "mutated" or (how == "json" and not name.endswith(("json", "jsonl"))):
        (copy / name).write_bytes(data.draw(mutated(valid), "bytes"))
    elif how == "json":
        (copy / name).write_bytes(data.draw(st.sampled_from(JSON_HOSTILE), "json"))
    elif how == "folder":
        (copy / name).unlink(missing_ok=True)
        (copy / name).mkdir()
    else:
        (copy / name).unlink(missing_ok=True)
        (copy / name).symlink_to(copy / name)
    loads_or_names(lambda: read_run_file(copy, model, name), copy / name)


# -- fitted sampler files (vaekit fit-sampler) ---------------------------------------------------
SAMPLER_FITS = {"gmm": {"components": 2, "iterations": 5}, "maf": {"layers": 1, "hidden": 4, "epochs": 1}}
META_HOSTILE = [("dim", "x"), ("dim", 10**12), ("dim", -3), ("dim", 2.5), ("dim", True), ("dim", None), ("dim", 3),
                ("args", []), ("args", "x"), ("args", {"components": 10**12}), ("args", {"components": "x"}),
                ("args", {"components": 2.5}), ("args", {"layers": 10**9}), ("args", {"hidden": 10**9}),
                ("args", {"depth": 10**6}), ("args", {"hidden": 5}), ("args", {"lr": "fast"}),
                ("args", {"tol": None}), ("args", {"init": 3}), ("args", {"nope": 1}), ("scores", [1]),
                ("weights", None), ("weights", {"sha256": "0" * 64})]


@pytest.fixture(scope="module")
def sampler_run(run_files):
    import vaekit

    run, model = run_files
    for name, args in SAMPLER_FITS.items():
        vaekit.fit_sampler(run, name, **args)
    return run, model


def sampler_copy(run: Path, name: str):
    """A copy of ``run``'s weights, config and fitted sampler ``name``: (run, meta path, weights path)."""
    from vaekit.app.sampling import sampler_files

    copy = fresh_dir() / "run"
    (copy / "samplers").mkdir(parents=True)
    for f in ("config.json", "model.safetensors", f"samplers/{name}.json", f"samplers/{name}.safetensors"):
        (copy / f).write_bytes((run / f).read_bytes())
    return (copy, *sampler_files(copy, name))


def load_sampler_copy(copy: Path, name: str, model):
    """``load_sampler`` on the copy, with the shared model."""
    from vaekit.app.sampling import load_sampler

    return load_sampler(copy, name, model=model)


@FUZZ
@given(st.data())
def test_sampler_files(sampler_run, data):
    run, model = sampler_run
    name = data.draw(st.sampled_from(sorted(SAMPLER_FITS)), "sampler")
    copy, meta_path, weights_path = sampler_copy(run, name)
    how = data.draw(st.sampled_from(["json", "json bytes", "weights bytes", "other weights", "folder"]), "how")
    if how == "json":
        meta = json.loads(meta_path.read_text())
        key, value = data.draw(st.sampled_from(META_HOSTILE), "field")
        meta[key] = {**meta["args"], **value} if key == "args" and isinstance(value, dict) and value.keys() <= \
            meta["args"].keys() else value
        meta_path.write_text(json.dumps(meta) if data.draw(st.booleans(), "object") else json.dumps([meta]))
    elif how == "json bytes":
        meta_path.write_bytes(data.draw(mutated(meta_path.read_bytes()), "bytes"))
    elif how == "weights bytes":
        weights_path.write_bytes(data.draw(mutated(weights_path.read_bytes()), "bytes"))
    elif how == "other weights":  # the other sampler's tensors under this one's name
        weights_path.write_bytes((run / "samplers" / f"{sorted(set(SAMPLER_FITS) - {name})[0]}.safetensors").read_bytes())
    else:
        weights_path.unlink()
        weights_path.mkdir()
    fitted = loads_or_names(lambda: load_sampler_copy(copy, name, model), meta_path.parent)
    if fitted is not None:
        assert fitted.sample(3).shape == (3, model.latent_dim)


@pytest.mark.parametrize("meta", [b"2", b'"x"', b"null"])  # b"2": found by atheris (benchmarks/fuzz_atheris.py)
def test_sampler_file_that_is_not_an_object(sampler_run, meta):
    run, model = sampler_run
    copy, meta_path, _ = sampler_copy(run, "gmm")
    meta_path.write_bytes(meta)
    with pytest.raises(VaekitError, match=f"sampler file {meta_path} is not a JSON object with the sampler's args"):
        load_sampler_copy(copy, "gmm", model)


def test_sampler_file_with_absurd_sizes(sampler_run):
    """args that would build a sampler of 10^12 numbers or 10^9 layers are refused before any is built."""
    run, model = sampler_run
    for name, key in (("gmm", "components"), ("maf", "layers"), ("maf", "hidden")):
        copy, meta_path, _ = sampler_copy(run, name)
        meta = json.loads(meta_path.read_text())
        meta["args"][key] = 10**12
        meta_path.write_text(json.dumps(meta))
        with pytest.raises(VaekitError, match=f"sampler file {meta_path} gives {key}=1000000000000, more than its "
                                              r"weights file holds \(\d+\)"):
            load_sampler_copy(copy, name, model)


# -- absurd headers in bounded memory and time --------------------------------------------------
ABSURD = textwrap.dedent("""
    import resource, struct, sys, warnings
    from pathlib import Path
    import numpy as np, torch
    from vaekit import rundir
    from vaekit.data import load_data
    from vaekit.errors import VaekitError
    folder = Path(sys.argv[1])
    model = torch.nn.Linear(2, 2)
    cases = {
        "idx": lambda: load_data(str(folder / "train-images-idx3-ubyte")),
        "idx.gz": lambda: load_data(str(folder / "gz" / "train-images-idx3-ubyte.gz")),
        "npy": lambda: load_data(str(folder / "x.npy")),
        "npy stream": lambda: load_data(str(folder / "x.npy"), stream=True),
        "npz": lambda: load_data(str(folder / "x.npz")),
        "npz size": lambda: load_data(str(folder / "lie.npz")),
        "safetensors": lambda: rundir.load_weights(folder / "model.safetensors", model),
        "csv": lambda: load_data(str(folder / "t.csv")),
    }
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    limit = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize() + (3 << 29)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("error")
    for name, call in cases.items():
        try:
            call()
            print(name, "| LOADED")
        except VaekitError as e:
            print(name, "| VaekitError", str(e).replace(chr(10), " "))
    sys.stdout.flush()
    import os; os._exit(0)  # no teardown of torch's import graph
""")


def lying_zip() -> bytes:
    """An .npz whose x.npy claims 4 GB (header shape and the zip's uncompressed size agree) but
    stores 100 bytes."""
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (4000000, 1000), }".ljust(117) + "\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(100)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("x.npy", member)
    data = bytearray(buf.getvalue())
    claimed = struct.pack("<I", 128 + 4_000_000_000)
    data[22:26] = claimed  # the local header's uncompressed size
    central = data.index(b"PK\x01\x02")
    data[central + 24:central + 28] = claimed  # and the central directory's
    return bytes(data)


def test_absurd_headers_fail_fast_in_bounded_memory(tmp_path):
    idx = struct.pack(">I", 0x0803) + struct.pack(">3I", 10**4, 10**4, 10**4) + bytes(100)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx)
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx))
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 1000, 1000), }".ljust(117) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(100)
    (tmp_path / "x.npy").write_bytes(npy)
    with zipfile.ZipFile(tmp_path / "x.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", npy)
    (tmp_path / "lie.npz").write_bytes(lying_zip())
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    (tmp_path / "t.csv").write_bytes(b"a,b\n" + b"12," * (40 << 20) + b"1\n")  # one 120 MB line
    done = subprocess.run([sys.executable, "-c", ABSURD, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    lines = dict(line.split(" | ", 1) for line in done.stdout.splitlines())
    assert list(lines) == ["idx", "idx.gz", "npy", "npy stream", "npz", "npz size", "safetensors", "csv"], done.stdout
    for name, outcome in lines.items():
        assert outcome.startswith("VaekitError"), (name, outcome)
    assert "10000, 10000, 10000" in lines["idx"] and "truncated" in lines["idx"]
    assert "1000000 rows of shape (1000, 1000)" in lines["npy"] and "truncated" in lines["npy"] and "228 bytes" in lines["npy"]
    assert "claims 4000000128 bytes from 228 compressed bytes" in lines["npz size"]
    assert "header too large" in lines["safetensors"] and "longer than" in lines["csv"]


def test_pil_warnings_never_reach_the_user(tmp_path):
    """Under Python's default filters (not the tests' "error"), a huge image is refused by vaekit and
    PIL's DecompressionBombWarning is not printed."""
    (tmp_path / "a.png").write_bytes(big_png(10_000))
    (tmp_path / "b.png").write_bytes(png_bytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        with pytest.raises(VaekitError, match=r"image '.*a\.png' is too large to load \(Image size \(100000000 pixels\)"):
            load_data(str(tmp_path))
    assert [str(w.message) for w in caught] == []
