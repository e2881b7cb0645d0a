"""Training beside other busy processes: epoch time of `vaekit train` with its automatic thread count,
with one thread and with two, while 0, 1 or 2 other CPU-bound processes run.

    .venv/bin/python benchmarks/contention.py --data fashion-mnist --repeats 3

Each configuration is a fresh `vaekit train --epochs 1` (the default model); the epoch's seconds come
from its metrics.jsonl (start-up excluded). Runs are interleaved; medians are reported. The competing
processes are Python busy loops started by this script, and stopped after each block. Targets (issue
"What a new user and a test audit found"): with one other process, auto <= 1.3x the one-thread time;
on an idle machine, auto no slower than two threads. Writes benchmarks/results/contention.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VAEKIT = [sys.executable, "-m", "vaekit"]
MODES = {"auto": [], "1 thread": ["--threads", "1"], "2 threads": ["--threads", "2"]}


def epoch_seconds(data: str, extra, folder: Path) -> float:
    out = folder / f"run{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([*VAEKIT, "train", "--data", data, "--epochs", "1", "--no-plots", "--no-progress",
                           "--out", str(out), *extra], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return float([r for r in rows if "event" not in r][-1]["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--competitors", default="0,1,2")
    args = parser.parse_args()
    command = "python benchmarks/contention.py " + shlex.join(sys.argv[1:])
    table = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in [int(v) for v in args.competitors.split(",")]:
            spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]
            try:
                time.sleep(1.0)
                times = {mode: [] for mode in MODES}
                for rep in range(args.repeats):
                    order = list(MODES)[rep % len(MODES):] + list(MODES)[:rep % len(MODES)]
                    for mode in order:
                        times[mode].append(epoch_seconds(args.data, MODES[mode], Path(tmp)))
                        print(json.dumps({"competitors": k, "mode": mode, "seconds": times[mode][-1]}), flush=True)
            finally:
                for s in spinners:
                    s.kill()
                    s.wait()
            table[k] = {mode: statistics.median(v) for mode, v in times.items()}
    lines = [f"`{command}`", "", "| other busy processes | auto (s/epoch) | 1 thread | 2 threads | auto / 1 thread | "
             "auto / 2 threads |", "|---|---|---|---|---|---|"]
    for k, row in table.items():
        lines.append(f"| {k} | {row['auto']:.2f} | {row['1 thread']:.2f} | {row['2 threads']:.2f} | "
                     f"{row['auto'] / row['1 thread']:.2f} | {row['auto'] / row['2 threads']:.2f} |")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "contention.json").write_text(json.dumps({"command": command, "medians": table}, indent=2))
    (results / "contention.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
