"""Epoch time of one process against several (``vaekit train --nproc N``) on the same machine.

    python benchmarks/distributed_epoch.py [--data fashion-mnist] [--nproc 2] [--epochs 2] [--repeats 1]

Trains the MLP VAE (784-512-16, Bernoulli, batch 128 global) with ``vaekit train`` in a child
process: once as one process with all the cores as threads (OMP_NUM_THREADS = cores), once as N
processes with cores / N threads each (gloo on the CPU), alternating when ``--repeats`` > 1. Each
epoch's ``seconds`` comes from the run's metrics.jsonl (training steps, validation and the prior
fit: what an epoch costs); the first epoch is reported apart from the later ones (it includes the
first-touch costs). The wall time includes Python and torchrun start-up. Results:
benchmarks/results/distributed-<data>.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
MODEL = ["--hidden", "512", "--latent-dim", "16", "--batch-size", "128", "--lr", "0.001"]


def train_once(data: str, epochs: int, nproc: int, threads: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "vaekit", "train", "--data", data, "--epochs", str(epochs), *MODEL,
           "--out", str(out), "--no-plots", "--no-progress", "--overwrite"]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"nproc": nproc, "threads_per_process": threads, "epoch_seconds": [r["seconds"] for r in rows],
            "val_elbo": rows[-1].get("val_elbo"), "wall_seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for nproc in (1, args.nproc):
                runs.append(train_once(args.data, args.epochs, nproc, max(1, cores // nproc),
                                       Path(tmp) / f"run-{nproc}-{i}"))
    summary = {}
    for nproc in (1, args.nproc):
        mine = [r for r in runs if r["nproc"] == nproc]
        later = [s for r in mine for s in r["epoch_seconds"][1:]] or [r["epoch_seconds"][0] for r in mine]
        summary[nproc] = {"first_epoch_s": statistics.median(r["epoch_seconds"][0] for r in mine),
                          "later_epoch_s": statistics.median(later),
                          "wall_s": statistics.median(r["wall_seconds"] for r in mine),
                          "val_elbo": mine[-1]["val_elbo"]}
    command = "python benchmarks/distributed_epoch.py " + " ".join(sys.argv[1:])
    result = {"command": command.strip(), "data": args.data, "model": " ".join(MODEL), "cores": cores,
              "torch": torch.__version__, "machine": platform.machine(), "runs": runs, "summary": summary}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"distributed-{args.data}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    one = summary[1]["later_epoch_s"]
    lines = [f"`{result['command']}` ({cores} cores, torch {torch.__version__})", "",
             "| processes x threads | first epoch (s) | later epochs (s) | vs one process | wall (s) | val ELBO |",
             "|---|---|---|---|---|---|"]
    for nproc, s in summary.items():
        threads = max(1, cores // nproc)
        lines.append(f"| {nproc} x {threads} | {s['first_epoch_s']:.1f} | {s['later_epoch_s']:.1f} | "
                     f"{one / s['later_epoch_s']:.2f}x | {s['wall_s']:.1f} | {s['val_elbo']:.2f} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
