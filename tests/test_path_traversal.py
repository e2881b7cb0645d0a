"""Names vaekit builds paths from (dataset names, cache and download files, shard names, a default
run directory) and names read from inside data never lead outside their folder."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vaekit.data import builtin, download, load_data
from vaekit.data.npy_reader import is_shard_folder
from vaekit.errors import VaekitError
from vaekit.paths import MAX_NAME, inside, safe_name

HOSTILE = ["../x", "../../etc/passwd", "/etc/passwd", "..", ".", "", "a/../../b", "~root", "x\n..\n/y",
           "\udcff\udcfe", "C:\\Windows\\..\\..", "runs/../../..", "-rf", "." * 300, "a" * 300]


@pytest.mark.parametrize("text", HOSTILE)
def test_safe_name_is_one_plain_component(text, tmp_path):
    name = safe_name(text)
    assert name not in ("", ".", "..") and "/" not in name and "\\" not in name and not name.startswith(".")
    assert len(name) <= MAX_NAME and name.isascii()
    assert inside(tmp_path, name) == tmp_path / name


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text())
def test_safe_name_of_any_text_stays_inside(text):
    name = safe_name(text)
    assert Path(name).name == name and name not in (".", "..") and len(name) <= MAX_NAME
    assert (Path("/base") / name).parent == Path("/base")


def test_safe_name_keeps_ordinary_names():
    assert [safe_name(n) for n in ("mnist", "fashion-mnist", "shapes-2000-seed3", "vae-digits", "x_1.2+b")] == \
        ["mnist", "fashion-mnist", "shapes-2000-seed3", "vae-digits", "x_1.2+b"]
    assert safe_name("my data.npy") == "my_data.npy" and safe_name("..", default="run") == "run"


@pytest.mark.parametrize("relative", ["../x", "/etc", "a/../../x", "a/b/../../../x"])
def test_inside_refuses_names_that_climb_out(tmp_path, relative):
    with pytest.raises(VaekitError, match=f"the name '{relative}' would lead outside {tmp_path}"):
        inside(tmp_path, relative)


def test_inside_follows_symlinks_and_allows_names_within(tmp_path):
    (tmp_path / "out").symlink_to(tmp_path.parent)
    with pytest.raises(VaekitError, match="would lead outside"):
        inside(tmp_path, "out/x")
    assert inside(tmp_path, "a/../b") == tmp_path / "a/../b"
    assert inside(tmp_path, "a/b.npy") == tmp_path / "a" / "b.npy"


@pytest.mark.parametrize("source", ["../mnist", "mnist/../../x", "/etc/mnist", "shapes-10/../../x", "mnist/",
                                    "../../.cache/vaekit/mnist"])
def test_paths_are_never_taken_for_dataset_names(source):
    assert builtin.canonical_name(source) is None


def test_cache_dirs_of_every_dataset_name_lie_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for name in (*builtin.DATASET_NAMES, "shapes-2000-seed3", "../../etc", "/etc"):
        folder = builtin.cache_dir(name)
        assert folder.parent == tmp_path / "vaekit", (name, folder)
        inside(tmp_path / "vaekit", folder.name)


def test_a_download_file_name_that_climbs_out_is_refused_before_anything_is_fetched(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "IDX_GZ_FILES", ("../evil.gz",))
    with pytest.raises(VaekitError, match=r"the name '../evil.gz' would lead outside .*cache"):
        download.download_dataset("mnist", tmp_path / "cache", mirrors="http://127.0.0.1:9/",
                                  checksums={"../evil.gz": "0" * 32})
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cache"]


@pytest.mark.parametrize("name", ["x-0.npy\n", "x-\u0663.npy", "x-0.npy.bak", " x-0.npy", "x--1.npy", "X-0.npy"])
def test_only_plain_ascii_shard_names_count(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    assert not is_shard_folder(tmp_path)


def test_npz_member_names_are_keys_never_paths(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.ones((10, 3)))
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
        z.writestr("../../escaped.npy", buf.getvalue())
        z.writestr("/abs.npy", buf.getvalue())
    before = sorted(os.listdir(tmp_path.parent))
    splits = load_data(str(tmp_path / "d.npz"), val_fraction=0)
    assert splits.info.shape == (3,) and sorted(os.listdir(tmp_path.parent)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


@pytest.mark.parametrize("source", ["../x.npy", "/abs/y.npy", "..", "a b\n.npy", "../../etc/passwd", "\udcff.csv"])
def test_default_run_directory_from_a_data_name_stays_in_runs(source):
    """What api.py's default --out should build: runs/<safe_name(recipe-data)>."""
    stem = Path(source).stem or "data"
    run = inside("runs", safe_name(f"vae-{stem}"))
    assert run.parent == Path("runs") and run.name.startswith("vae-")


def test_an_unknown_dataset_name_with_dots_is_a_missing_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VaekitError, match=r"data path '../../nope' does not exist"):
        load_data("../../nope")
    assert os.listdir(tmp_path) == []


def test_the_default_run_directory_is_a_safe_name_inside_runs(tmp_path, monkeypatch):
    import numpy as np

    from vaekit.app.api import train_run

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "my data\n..npy"  # a space, a newline and dots in the file's name
    np.save(data, np.random.default_rng(0).random((60, 4)).astype("float32"))
    run = train_run(str(data), epochs=1, hidden="8", progress=False)
    assert run.dir == Path("runs") / "vae-my_data_." and run.dir.is_dir()
