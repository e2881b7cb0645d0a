"""Peak memory of ``vaekit train`` on data larger than memory: 1x, 3x and 10x Fashion-MNIST.

    python benchmarks/streaming_memory.py [--sizes 1,3,10] [--in-memory 1,10] [--tmp /tmp]
    python benchmarks/streaming_memory.py --sizes '' --in-memory '' --formats parquet,h5ad --format-sizes 1,3

Writes a synthetic uint8 .npy of k x 70,000 images of 28 x 28 (k = 10: 700,000 images, 549 MB)
made from the real Fashion-MNIST images (train + test, read from /usr/share/datasets/fashion-mnist
or --fmnist): copy c is flipped left-right when c is odd, shifted right by c // 2 pixels and given
+-8 grey levels of noise, written 10,000 images at a time so generating it is bounded too. Then
trains one full epoch of the MLP VAE on it with ``vaekit train --stream`` in a child process (all
training steps, the validation pass and the data checks: every byte of the file is read) and records
the child's peak resident memory (``wait4``'s ru_maxrss), the epoch's seconds and the wall time. The
same runs with ``--no-stream`` (the data loaded in memory as float32) are the comparison. Each
streamed run is then evaluated (``vaekit evaluate RUN --metrics elbo,recon,au``) and encoded
(``vaekit encode``) on its test split, each in its own child, and the data path is timed alone
(loading plus one shuffled epoch of batches, no model). The big files are deleted afterwards. Results: benchmarks/results/streaming-memory.{json,md}.

``--formats parquet,h5ad`` writes the same images as a Parquet table (784 uint8 columns, row groups of 10,000)
and as an AnnData .h5ad with X a CSR matrix (float32), block by block, and trains on them streamed (and in
memory at the ``--format-in-memory`` sizes) the same way: benchmarks/results/streaming-formats.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vaekit.data.builtin import find_idx_files
from vaekit.data.idx import read_idx

BASE = 70_000
BLOCK = 10_000
RESULTS = Path(__file__).parent / "results"


# The child reports its own peak: ru_maxrss from wait4 would also count the parent's memory at the
# fork (Linux carries the high-water mark across exec), VmHWM is the child's own address space's.
CHILD = """import atexit, os, sys
def peak():
    with open('/proc/self/status') as f:
        hwm = next(line.split()[1] for line in f if line.startswith('VmHWM'))
    with open(os.environ['PEAK_FILE'], 'w') as f:
        f.write(hwm)
atexit.register(peak)
from vaekit.app.cli import main
main()"""


def fashion_mnist(folder: Path) -> np.ndarray:
    """All 70,000 Fashion-MNIST images, uint8 (70000, 28, 28)."""
    files = find_idx_files(folder)
    return np.concatenate([read_idx(files["x"]), read_idx(files["x_test"])])


def synthetic_blocks(base: np.ndarray, copies: int, seed: int = 0):
    """``copies`` altered copies of ``base``, uint8 blocks of at most BLOCK images."""
    for c in range(copies):
        for start in range(0, len(base), BLOCK):
            block = base[start:start + BLOCK].astype(np.int16)
            if c % 2:
                block = block[:, :, ::-1]
            block = np.roll(block, c // 2, axis=2)
            if c:
                rng = np.random.default_rng([seed, c, start])
                block = block + rng.integers(-8, 9, block.shape, dtype=np.int16)
            yield np.clip(block, 0, 255).astype(np.uint8)


def write_synthetic(path: Path, base: np.ndarray, copies: int, seed: int = 0) -> int:
    """``copies`` altered copies of ``base`` as one uint8 .npy, written block by block; returns bytes."""
    n = len(base) * copies
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                 "shape": (n, *base.shape[1:])})
        for block in synthetic_blocks(base, copies, seed):
            f.write(block.tobytes())
    return path.stat().st_size


def write_parquet(path: Path, base: np.ndarray, copies: int) -> int:
    """The synthetic images as a Parquet table of uint8 pixel columns, one row group per block."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [f"p{j}" for j in range(int(np.prod(base.shape[1:])))]
    with pq.ParquetWriter(path, pa.schema([(n, pa.uint8()) for n in names])) as w:
        for block in synthetic_blocks(base, copies):
            flat = block.reshape(len(block), -1)
            w.write_table(pa.table({n: flat[:, j] for j, n in enumerate(names)}))
    return path.stat().st_size


def write_h5ad(path: Path, base: np.ndarray, copies: int) -> int:
    """The synthetic images as an AnnData .h5ad with X a float32 CSR matrix, appended block by block."""
    import anndata
    import h5py
    import pandas as pd

    n, d = len(base) * copies, int(np.prod(base.shape[1:]))
    with h5py.File(path, "w") as f:
        x = f.create_group("X")
        x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": (n, d)})
        data = x.create_dataset("data", (0,), np.float32, maxshape=(None,), chunks=(1 << 16,))
        indices = x.create_dataset("indices", (0,), np.int32, maxshape=(None,), chunks=(1 << 16,))
        indptr, row = [np.zeros(1, np.int64)], 0
        for block in synthetic_blocks(base, copies):
            flat = block.reshape(len(block), -1)
            r, c = np.nonzero(flat)
            at = len(data)
            data.resize((at + len(r),))
            indices.resize((at + len(r),))
            data[at:], indices[at:] = flat[r, c].astype(np.float32), c.astype(np.int32)
            indptr.append(at + np.cumsum(np.bincount(r, minlength=len(flat))))
            row += len(flat)
        x["indptr"] = np.concatenate(indptr)
        write_elem = anndata.io.write_elem if hasattr(anndata, "io") else anndata.experimental.write_elem
        write_elem(f, "obs", pd.DataFrame(index=[str(i) for i in range(n)]))
        write_elem(f, "var", pd.DataFrame(index=[f"p{j}" for j in range(d)]))
    return path.stat().st_size


WRITERS = {"parquet": (".parquet", write_parquet), "h5ad": (".h5ad", write_h5ad)}


def vaekit_child(args: list, peak_file: Path) -> tuple:
    """``vaekit ARGS`` in a child process: (its peak RSS in MB, wall seconds, the command as text)."""
    cmd = [sys.executable, "-c", CHILD, *args]
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env={**os.environ, "PEAK_FILE": str(peak_file)})
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"vaekit {args[0]} failed ({done.returncode}):\n{done.stdout.decode()}")
    return round(int(peak_file.read_text()) / 1024, 1), round(wall, 2), " ".join(["vaekit", *args])


def train_child(data: Path, out: Path, stream: bool, extra: list) -> dict:
    """One epoch of ``vaekit train`` in a child process: its peak RSS, epoch seconds and wall time."""
    peak, wall, command = vaekit_child(["train", "--data", str(data), "--epochs", "1", "--out", str(out),
                                        "--overwrite", "--no-plots", "--no-progress",
                                        "--stream" if stream else "--no-stream", *extra], out.with_suffix(".peak"))
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    return {"stream": stream, "peak_rss_mb": peak, "epoch_seconds": round(row["seconds"], 2),
            "wall_seconds": wall, "steps": row["step"], "train_elbo": round(row["train_elbo"], 2),
            "command": command.replace(str(data.parent), "$TMP")}


def evaluate_child(run: Path) -> dict:
    """``vaekit evaluate RUN`` (elbo, recon, active units) and ``vaekit encode`` of a streamed run's test
    split: peak RSS and wall time of each."""
    out = {}
    for name, args in (("evaluate", ["evaluate", str(run), "--metrics", "elbo,recon,au"]),
                       ("encode", ["encode", str(run), "--out", str(run / "codes.npy")])):
        peak, wall, _ = vaekit_child(args, run / f"{name}.peak")
        out.update({f"{name}_peak_rss_mb": peak, f"{name}_wall_seconds": wall})
    return out


def read_epoch(data: Path, batch_size: int = 512) -> dict:
    """The data path alone: one shuffled epoch of streamed training batches, read and converted
    (no model), in this process; seconds and microseconds per example."""
    import torch

    from vaekit.data import iterate_batches, load_data

    start = time.perf_counter()
    train = load_data(str(data), stream=True).train
    opened = time.perf_counter()
    n = sum(len(x) for x, _ in iterate_batches(train, batch_size, shuffle=True,
                                                generator=torch.Generator().manual_seed(0)))
    done = time.perf_counter()
    return {"load_seconds": round(opened - start, 2), "read_epoch_seconds": round(done - opened, 2),
            "read_us_per_example": round((done - opened) / n * 1e6, 2)}


def markdown(result: dict) -> str:
    lines = ["| data | examples | file (MB) | reading | train: peak RSS (MB) | epoch (s) | wall (s) | steps "
             "| evaluate / encode: peak RSS (MB) | data path alone: load + epoch (s), µs/example |",
             "|---|---:|---:|---|---:|---:|---:|---:|---|---|"]
    for r in result["runs"]:
        alone = (f"{r['load_seconds']:.1f} + {r['read_epoch_seconds']:.1f}, {r['read_us_per_example']:.1f}"
                 if "load_seconds" in r else "")
        evals = (f"{r['evaluate_peak_rss_mb']:.0f} / {r['encode_peak_rss_mb']:.0f}"
                 if "evaluate_peak_rss_mb" in r else "")
        what = f" ({r['format']})" if "format" in r else ""
        lines.append(f"| {r['size']}x Fashion-MNIST{what} | {r['examples']:,} | {r['file_mb']:.0f} | "
                     f"{'streamed' if r['stream'] else 'in memory'} | {r['peak_rss_mb']:.0f} | "
                     f"{r['epoch_seconds']:.1f} | {r['wall_seconds']:.1f} | {r['steps']} | {evals} | {alone} |")
    return "\n".join(lines) + "\n\n" + result["note"] + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,3,10", help="multiples of Fashion-MNIST to stream")
    parser.add_argument("--in-memory", default="1,10", help="multiples also trained with --no-stream")
    parser.add_argument("--fmnist", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--tmp", default="/tmp", help="where the big files go (deleted afterwards)")
    parser.add_argument("--train-args", default="--batch-size 512",
                        help="more vaekit train options for every run (default: %(default)s, 4x fewer steps)")
    parser.add_argument("--formats", default="", help="also Parquet and/or .h5ad files: parquet,h5ad")
    parser.add_argument("--format-sizes", default="1,3", help="multiples written in each of --formats, streamed")
    parser.add_argument("--format-in-memory", default="1", help="multiples of --formats also trained in memory")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    in_memory = [int(s) for s in args.in_memory.split(",") if s]
    base = fashion_mnist(Path(args.fmnist))
    if args.formats:
        formats_benchmark(args, base)
    if not sizes and not in_memory:
        return
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="vaekit-streaming-") as tmp:
        runs = train_sizes(Path(tmp), "fmnist", ".npy", write_synthetic, base, sizes, in_memory, args, evaluate=True)
    save("streaming-memory", "streaming_memory", args, runs,
         "One epoch of the default MLP VAE (options: " + args.train_args + ") in a child process; peak "
         "RSS is the child's VmHWM at exit. Streamed data is read with pread per batch (vaekit/data/npy_reader.py); "
         "in memory, the uint8 file becomes a float32 tensor (4x its size) plus splits. 'Data path "
         "alone' is load_data(stream=True) (header, min/max scan, splits) and one shuffled epoch of "
         "batches of 512 read and converted with no model, in the benchmark's own process. Timings "
         "come from a shared 2-core machine: compare them within a row, not across runs.")


def train_sizes(tmp: Path, stem: str, suffix: str, write, base: np.ndarray, sizes: list, in_memory: list, args,
                evaluate: bool, **fields) -> list:
    """Write the data at each size, train on it streamed (``sizes``) and in memory (``in_memory``): the rows."""
    runs = []
    for size in sorted(set(sizes) | set(in_memory)):
        data = tmp / f"{stem}-{size}x{suffix}"
        nbytes = write(data, base, size)
        for stream in (True, False):
            if size not in (sizes if stream else in_memory):
                continue
            run = tmp / f"run-{stem}-{size}-{stream}"
            r = train_child(data, run, stream, args.train_args.split())
            r.update(**fields, size=size, examples=BASE * size, file_mb=round(nbytes / 2**20, 1))
            if stream:
                r.update(evaluate_child(run) if evaluate else {})
                r.update(read_epoch(data))
            print(json.dumps(r), flush=True)
            runs.append(r)
        data.unlink()
    return runs


def save(stem: str, benchmark: str, args, runs: list, note: str) -> None:
    result = {
        "benchmark": benchmark, "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads default", "runs": runs, "note": note,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


def formats_benchmark(args, base: np.ndarray) -> None:
    """Parquet and .h5ad rows: the same training runs on the images written in those formats."""
    sizes = [int(s) for s in args.format_sizes.split(",") if s]
    in_memory = [int(s) for s in args.format_in_memory.split(",") if s]
    runs = []
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="vaekit-streaming-") as tmp:
        for fmt in args.formats.split(","):
            suffix, write = WRITERS[fmt]
            runs += train_sizes(Path(tmp), fmt, suffix, write, base, sizes, in_memory, args, evaluate=False,
                                format=fmt)
    save("streaming-formats", "streaming_memory --formats", args, runs,
         "One epoch of the default MLP VAE (options: " + args.train_args + ") on the images as a table "
         "(784 columns, standardized), in a child process; peak RSS is the child's VmHWM at exit. A "
         "streamed .h5ad reads CSR rows per batch with h5py (vaekit/data/h5ad.py); a streamed Parquet file is "
         "first converted record batch by record batch to a float32 .npy spill file in $TMPDIR (unlinked at once), "
         "then read with pread per batch (vaekit/data/format_stream.py). In memory, the table becomes a "
         "float32 tensor plus splits. 'Data path alone' is load_data(stream=True) and one shuffled epoch of "
         "batches of 512, no model. Timings come from a shared 2-core machine (other jobs running): compare "
         "them within a row, not across runs.")


if __name__ == "__main__":
    main()
