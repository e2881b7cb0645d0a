"""A full disk or a read-only run directory: a clear error, and the last checkpoint intact.

These mount small tmpfs file systems, so they run as root where mounting is allowed and are
skipped elsewhere (a read-only directory is then made with chmod, which root ignores)."""
import os
import subprocess
from pathlib import Path

import pytest

import vaekit
from vaekit.errors import VaekitError
from vaekit.rundir import read_metrics

SMALL = dict(hidden=[32], batch_size=256, progress=False)


def mount_tmpfs(path: Path, size: str, read_only: bool = False) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not mount_tmpfs(disk, "2m"):
        pytest.skip("mounting a tmpfs needs root and the mount capability")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path) -> Path:
    """Fill the file system to the last byte."""
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    for size in (4096, 512, 64, 1):
        try:
            with open(filler, "ab") as f:
                while True:
                    f.write(b"\0" * size)
                    f.flush()
        except OSError:
            pass
    return filler


def snapshot(run: Path) -> dict:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_a_full_disk_keeps_the_last_checkpoint_and_resume_finishes_after(small_disk):
    run = small_disk / "run"
    vaekit.train("digits", out=run, epochs=1, **SMALL)
    before = snapshot(run)
    filler = fill(small_disk)
    with pytest.raises(VaekitError, match=r"could not write .*: the disk is full; .* --resume"):
        vaekit.train(out=run, resume=True, epochs=2, progress=False)
    after = snapshot(run)
    for name in ("model.safetensors", "state.pt", "config.json"):
        assert after[name] == before[name], name
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind
    filler.unlink()
    vaekit.train(out=run, resume=True, epochs=2, progress=False)
    assert [row["epoch"] for row in read_metrics(run / "metrics.jsonl")] == [1, 2]


def test_an_unwritable_output_directory_is_named_with_the_fix(tmp_path):
    folder = tmp_path / "ro"
    if os.geteuid() == 0:
        if not mount_tmpfs(folder, "1m", read_only=True):
            pytest.skip("a read-only directory for root needs a read-only mount")
    else:
        folder.mkdir()
        folder.chmod(0o555)
    try:
        with pytest.raises(VaekitError, match=r"is not writable; .* Pass an --out in a directory you can write to"):
            vaekit.train("digits", out=folder / "run", epochs=1, **SMALL)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)
