"""Data streamed from .npy files (vaekit/data/mapped.py, streaming.py, npy_reader.py): the same
numbers as in memory, shard folders, bad shard sets, and reading in bounded memory."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_digits

import vaekit
from vaekit.app.workflows import encode_run
from vaekit.data import iterate_batches, load_data, mapped, streaming
from vaekit.data.mapped import MappedData
from vaekit.data.types import TensorData
from vaekit.errors import VaekitError

SMALL = dict(hidden="32", latent_dim=2, batch_size=64, progress=False)


@pytest.fixture(scope="module")
def digits_u8(tmp_path_factory):
    """scikit-learn's digits as 8-bit images (N, 8, 8) and their labels."""
    d = load_digits()
    return (d.images * (255 / 16)).round().astype(np.uint8), d.target


def weights(run) -> dict:
    return load_file(str(run / "model.safetensors"))


@pytest.mark.parametrize("kind", ["image", "table"])
def test_streamed_training_is_bit_identical_to_in_memory(tmp_path, digits_u8, kind):
    x = digits_u8[0] if kind == "image" else np.random.default_rng(0).normal(3, 2, (600, 6))
    np.save(tmp_path / "x.npy", x)
    opts = dict(SMALL, likelihood="gaussian") if kind == "table" else SMALL
    runs = {}
    for stream in (False, True):
        runs[stream] = tmp_path / f"run-{stream}"
        vaekit.train(str(tmp_path / "x.npy"), out=runs[stream], epochs=2, seed=3, stream=stream, **opts)
    # a run started in memory and resumed streamed (a smaller machine) gives the same numbers too
    moved = tmp_path / "run-moved"
    vaekit.train(str(tmp_path / "x.npy"), out=moved, epochs=1, seed=3, stream=False, **opts)
    vaekit.train(out=moved, resume=True, epochs=2, stream=True, progress=False)
    assert vaekit.open_run(moved).config.data.stream is True
    a, b, c = weights(runs[False]), weights(runs[True]), weights(moved)
    assert a.keys() == b.keys() == c.keys()
    for k in a:
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]), k
    codes = [np.load(encode_run(runs[s], tmp_path / f"z-{s}.npy")[0]) for s in (False, True)]
    np.testing.assert_array_equal(codes[0], codes[1])
    assert np.abs(codes[0]).sum() > 0


def test_streamed_splits_match_in_memory_values_labels_and_info(tmp_path, digits_u8):
    x, y = digits_u8
    for i, (lo, hi) in enumerate([(0, 700), (700, 701), (701, 1797)]):  # a one-example shard too
        np.save(tmp_path / f"x-{i:03d}.npy", x[lo:hi])
        np.save(tmp_path / f"y-{i:03d}.npy", y[lo:hi])
    np.save(tmp_path / "all.npy", x)
    folder_mem, folder_stream = load_data(str(tmp_path)), load_data(str(tmp_path), stream=True)
    single = load_data(str(tmp_path / "all.npy"), stream=True)
    assert isinstance(folder_mem.train, TensorData) and isinstance(folder_stream.train, MappedData)
    assert folder_mem.info == folder_stream.info and folder_mem.info.num_classes == 10
    assert folder_stream.info.extra["levels"] == 256
    for split in ("train", "val", "test"):
        mem, streamed = getattr(folder_mem, split), getattr(folder_stream, split)
        assert torch.equal(mem.x, streamed.x[:]) and torch.equal(mem.y, streamed.y)
        order = torch.randperm(len(mem), generator=torch.Generator().manual_seed(0))[:50]
        assert torch.equal(mem.x[order], streamed.x[order])  # shuffled reads come back in the order asked
    # without labels the split is not stratified: compare with the rows it chose
    assert torch.equal(torch.from_numpy(x[single.test.rows.numpy()]).float().div(255)[:, None],
                       single.test.x[:])


def test_table_statistics_in_many_chunks_match_one_pass(tmp_path, monkeypatch):
    x = np.random.default_rng(1).normal(5, 3, (1000, 4)) * np.array([1, 10, 1e3, 0])  # a constant column
    np.save(tmp_path / "t.npy", x)
    whole = load_data(str(tmp_path / "t.npy"))
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 16 * 37)  # 37 rows a chunk: Chan's merge, many times
    chunked = load_data(str(tmp_path / "t.npy"), stream=True)
    np.testing.assert_allclose(chunked.info.mean, whole.info.mean, rtol=1e-12)
    np.testing.assert_allclose(chunked.info.std, whole.info.std, rtol=1e-12)
    assert chunked.info.std[3] == 1.0 and whole.info.std[3] == 1.0
    torch.testing.assert_close(chunked.train.x[:], whole.train.x, rtol=1e-6, atol=1e-6)
    assert abs(float(whole.train.x[:, 2].mean())) < 1e-5


def test_mapped_rows_behave_like_a_tensor_where_they_can(tmp_path, digits_u8, monkeypatch):
    np.save(tmp_path / "x.npy", digits_u8[0])
    s = load_data(str(tmp_path / "x.npy"), stream=True)
    mem = load_data(str(tmp_path / "x.npy"), stream=False)
    xs = s.train.x
    assert xs.shape == mem.train.x.shape and xs.dim() == 4 and xs.numel() == mem.train.x.numel()
    assert torch.equal(xs[5], mem.train.x[5]) and torch.equal(xs[3:9:2], mem.train.x[3:9:2])
    assert float(xs.min()) == float(mem.train.x.min()) and float(xs.max()) == float(mem.train.x.max())
    small = s.train.subset(torch.tensor([4, 1, 7]))
    assert isinstance(small, TensorData) and torch.equal(small.x, mem.train.x[[4, 1, 7]])
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 4 * 64 * 10)  # 10 examples: a bigger subset stays a view
    view = s.train.subset(torch.arange(100))
    assert isinstance(view, MappedData) and torch.equal(view.x[:], mem.train.x[:100])
    assert [len(c) for c in view.chunks()] == [10] * 10
    with pytest.raises(VaekitError, match=r"in memory at once .*x\.sum.*--no-stream"):
        xs.sum()
    batches = list(iterate_batches(s.train, 100, shuffle=True, generator=torch.Generator().manual_seed(0),
                                   shard=(1, 2)))
    expected = list(iterate_batches(mem.train, 100, shuffle=True, generator=torch.Generator().manual_seed(0),
                                    shard=(1, 2)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, expected)) and len(batches) == len(expected)


def test_large_npy_streams_by_default_small_stays_in_memory(tmp_path, digits_u8, monkeypatch):
    np.save(tmp_path / "x.npy", digits_u8[0])
    assert isinstance(load_data(str(tmp_path / "x.npy")).train, TensorData)
    monkeypatch.setattr(streaming, "stream_threshold", lambda: 1797 * 64 * 4 - 1)
    assert isinstance(load_data(str(tmp_path / "x.npy")).train, MappedData)
    assert isinstance(load_data(str(tmp_path / "x.npy"), stream=False).train, TensorData)
    with pytest.raises(VaekitError, match="'digits' cannot be streamed"):
        load_data("digits", stream=True)


def bad(tmp_path, files: dict, match: str, stream=True):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, arr in files.items():
        np.save(folder / name, arr)
    with pytest.raises(VaekitError, match=match):
        load_data(str(folder), stream=stream)


@pytest.mark.parametrize("files, match", [
    ({"x-0.npy": np.zeros((5, 4)), "x-1.npy": np.zeros((5, 3))}, r"x-1\.npy.*shape \(3,\).*same dtype and example shape"),
    ({"x-0.npy": np.zeros((5, 4)), "x-1.npy": np.zeros((5, 4), np.float32)}, r"float32.*same dtype"),
    ({"x-0.npy": np.zeros((5, 4)), "x-2.npy": np.zeros((5, 4))}, r"not number\(s\) 1; a folder of \.npy shards"),
    ({"x-1.npy": np.zeros((5, 4))}, r"not number\(s\) 0"),
    ({"y-0.npy": np.zeros(5)}, r"no x-0\.npy shard"),
    ({"x-0.npy": np.zeros((5, 4)), "x-00.npy": np.zeros((5, 4))}, r"two shards numbered 0"),
    ({"x-0.npy": np.zeros((5, 4)), "x-1.npy": np.zeros((5, 4)), "y-0.npy": np.zeros(5)}, r"2 x shards but 1 y"),
    ({"x-0.npy": np.zeros((5, 4)), "y-0.npy": np.zeros(4)}, r"5 examples; give one label per example"),
    ({"x-0.npy": np.array([["a", "b"]] * 5)}, r"not numbers"),
])
@pytest.mark.parametrize("stream", [True, False])
def test_bad_shard_sets_are_refused_clearly(tmp_path, files, match, stream):
    bad(tmp_path, files, match, stream)


def test_truncated_empty_and_odd_npy_files(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((100, 10)))
    data = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-80])
    with pytest.raises(VaekitError, match=r"'.*cut\.npy' is truncated: .*100 rows of shape \(10,\) \(8128 bytes\) but the file has 8048"):
        load_data(str(tmp_path / "cut.npy"), stream=True)
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(VaekitError, match=r"could not read .*junk\.npy.: it is not a \.npy file \(no numpy header\)"):
        load_data(str(tmp_path / "junk.npy"), stream=True)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 3), allow_pickle=True)
    with pytest.raises(VaekitError, match="holds Python objects"):
        load_data(str(tmp_path / "obj.npy"), stream=True)
    np.save(tmp_path / "f.npy", np.asfortranarray(np.zeros((10, 3))))
    with pytest.raises(VaekitError, match=r"Fortran .* numpy\.ascontiguousarray"):
        load_data(str(tmp_path / "f.npy"), stream=True)
    np.save(tmp_path / "e.npy", np.zeros((0, 3)))
    with pytest.raises(VaekitError, match="is empty"):
        load_data(str(tmp_path / "e.npy"), stream=True)
    np.save(tmp_path / "nan.npy", np.where(np.eye(8)[None] > 0, np.nan, 0.5).repeat(20, 0))
    with pytest.raises(VaekitError, match="NaN"):
        load_data(str(tmp_path / "nan.npy"), stream=True)
    np.save(tmp_path / "big.npy", np.full((20, 8, 8), 300, np.int16))
    with pytest.raises(VaekitError, match=r"shape \(20, 1, 8, 8\), dtype int16\) but its values lie in \[300, 300\]"):
        load_data(str(tmp_path / "big.npy"), stream=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaekitError, match="empty"):
        load_data(str(tmp_path / "empty"), stream=False)
    with pytest.raises(VaekitError, match="cannot be streamed"):
        load_data(str(tmp_path / "empty"), stream=True)


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def test_a_shuffled_epoch_does_not_grow_resident_memory(tmp_path, monkeypatch):
    """47 MB of uint8 rows checked, then read in shuffled batches: resident memory grows by far less
    than the file (through a memory map it grows by the file's size: the kernel maps the pages
    around each read, and keeps them mapped)."""
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 4 << 20)  # chunks of the checks: 1 MB of uint8
    n, side = 60_000, 28
    out = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8, shape=(n, side, side))
    for start in range(0, n, 10_000):
        out[start:start + 10_000] = np.random.default_rng(start).integers(0, 256, (10_000, side, side), np.uint8)
    del out
    before = rss_kb()
    s = load_data(str(tmp_path / "x.npy"), stream=True, val_fraction=0)
    batches = iterate_batches(s.train, 256, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert sum(len(x) for x, _ in batches) == len(s.train) == 48_000
    grown_mb = (rss_kb() - before) / 1024
    assert grown_mb < 12, f"resident memory grew by {grown_mb:.0f} MB reading a 47 MB file"


def test_a_decoding_worker_whose_parent_died_while_it_started_exits():
    """A decoding worker (vaekit.data.decode_worker) checks its parent as it starts: one whose parent a SIGKILL
    ended during its start exits at once (benchmarks/kill_resume)."""
    from vaekit.data.decode_worker import exit_if_orphaned

    def code_of(parent):  # a forked process runs the check as a worker of ``parent``, then exits with 3
        pid = os.fork()
        if pid == 0:
            exit_if_orphaned(parent)
            os._exit(3)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    assert code_of(os.getpid()) == 3   # its parent lives: the worker goes on
    assert code_of(os.getpid() + 1_000_000) == 0  # another parent than its own (it was reparented): it exits
