"""The processes that decode a streamed image folder (vaekit/data/decode_worker.py, image_stream.DecodePool):
fresh processes without torch, ended with their pass, a dead one named in one line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vaekit.data.image_stream import DecodePool
from vaekit.errors import VaekitError


@pytest.fixture
def pngs(tmp_path):
    for i in range(6):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    return sorted(tmp_path.glob("*.png"))


def rows_source(folder):
    from vaekit.data import load_data

    return load_data(str(folder), stream=True, workers=2, val_fraction=0).train


def test_a_worker_imports_no_torch():
    code = "import sys, vaekit.data.decode_worker; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_workers_decode_in_order_and_end_with_their_pass(pngs):
    source = rows_source(pngs[0].parent).source
    batches = [np.array([i]) for i in range(5, -1, -1)]
    with DecodePool(2, (source.transform, source.shape, "pngs")) as pool:
        got = [x[0, 0, 0, 0] for x in pool.decode([[source.files[r] for r in rows] for rows in batches])]
        procs = list(pool.procs)
        for proc in procs:  # fresh processes, not forks of this one (which would hold its memory)
            assert b"vaekit.data.decode_worker" in open(f"/proc/{proc.pid}/cmdline", "rb").read()
    assert np.allclose(got, [40 * i / 255 for i in range(5, -1, -1)], atol=1e-6)
    assert all(p.poll() is not None for p in procs)  # ended on leaving


def test_a_worker_that_died_is_named_in_one_line(pngs):
    source = rows_source(pngs[0].parent).source
    with DecodePool(2, (source.transform, source.shape, "pngs")) as pool:
        os.kill(pool.procs[1].pid, signal.SIGKILL)
        with pytest.raises(VaekitError, match=r"decoding worker .* of data pngs was killed by signal 9; .*--workers 1"):
            list(pool.decode([[source.files[i]] for i in range(4)]))


def test_a_check_that_takes_one_batch_starts_no_workers(pngs, tmp_path, monkeypatch):
    """The preflight's batch is decoded in the training process: a 1-epoch streamed run starts workers once, for
    its epoch (not also for a check that reads one batch while the workers would decode four ahead)."""
    import vaekit
    from vaekit.data import image_stream

    pools = []
    monkeypatch.setattr(image_stream, "DecodePool", type("Counted", (DecodePool,), {
        "__enter__": lambda self: pools.append(self.count) or DecodePool.__enter__(self)}))
    vaekit.train(str(pngs[0].parent), out=tmp_path / "run", epochs=1, stream=True, workers=2, val_fraction=0,
                 batch_size=2, hidden=[8], latent_dim=2, progress=False)
    assert pools == [2]
