"""An epoch's cost against the training set's size: vaekit's MLP VAE on 10k, 30k and 60k in-memory images.

    .venv/bin/python benchmarks/scaling.py --sizes 10000 30000 60000 --repeats 3

Each size is the first N of Fashion-MNIST's 60000 training images, saved as an .npz and trained
with ``val_fraction 0`` (every image is a training image; no validation pass), by
benchmarks/vaekit_runner.py in a fresh process: the 784-``--hidden``-``--latent`` MLP VAE,
Bernoulli, Adam, batch ``--batch-size``, ``--epochs`` epochs. An epoch's cost is the median of
its epochs after the first, then the median over ``--repeats`` (the order of the sizes rotates
each repeat). Linear growth means the same seconds per 1000 images at every size: the table
gives that figure and its ratio to the smallest size's.

Writes benchmarks/results/scaling.{json,md}.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench_common import VAEKIT_RUNNER, command_line, interleaved, median, write


def per_epoch(result: dict) -> float:
    return statistics.median(result["epoch_seconds"][1:] or result["epoch_seconds"])


def rows_from(runs: dict, sizes) -> list:
    """s/epoch (median over repeats), s per 1000 images, and the ratio of the latter to the first size's."""
    rows = []
    for n in sizes:
        seconds = median(per_epoch(r) for r in runs[str(n)])
        rows.append({"images": n, "seconds_per_epoch": seconds, "seconds_per_1k": seconds / n * 1000})
    for row in rows:
        row["ratio_to_linear"] = row["seconds_per_1k"] / rows[0]["seconds_per_1k"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 30000, 60000])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    import vaekit

    command = command_line("scaling.py", args)
    data = vaekit.load_data(args.data, val_fraction=0)
    if max(args.sizes) > len(data.train):
        parser.error(f"--sizes go up to {len(data.train)}, the training images {args.data} has")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for n in args.sizes:
            npz = Path(tmp) / f"first-{n}.npz"
            np.savez(npz, x=data.train.x[:n].numpy(), x_test=data.test.x[:100].numpy())
            jobs.append((str(n), [sys.executable, VAEKIT_RUNNER, "--data", str(npz), "--out", str(Path(tmp) / "run"),
                                  "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--hidden",
                                  str(args.hidden), "--latent", str(args.latent), "--val-fraction", "0"]))
        runs = interleaved(jobs, args.repeats, env, {"part": "scaling"})
    rows = rows_from(runs, args.sizes)
    lines = [f"`{command}`", "",
             f"vaekit MLP {int(np.prod(data.info.shape))}-{args.hidden}-{args.latent}, batch {args.batch_size}, in-memory, training pass only "
             f"(no validation); median of the epochs after the first, median of {args.repeats} fresh processes.", "",
             "| training images | s / epoch | s per 1000 images | ratio to linear |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['images']:,} | {r['seconds_per_epoch']:.2f} | {r['seconds_per_1k']:.3f} | "
                     f"{r['ratio_to_linear']:.2f} |")
    write("scaling", {"command": command, "rows": rows, "runs": runs}, lines)


if __name__ == "__main__":
    main()
