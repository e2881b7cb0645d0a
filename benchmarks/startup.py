"""How fast the ``vaekit`` command answers: the median wall time of fresh processes per command.

    python benchmarks/startup.py                               # this checkout, 5 runs per command
    python benchmarks/startup.py --compare /tmp/startup-before --json

``--compare DIR`` times a second checkout in the same run (its ``vaekit`` package put first on
PYTHONPATH, the same interpreter), the runs of both interleaved, so a busy machine slows both alike.
Targets (issue 16): ``--help`` and ``train --help`` under 0.5 s, ``models`` under 1 s, and the
commands that do work no slower than before. ``--json`` writes benchmarks/results/startup.json.
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
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# the console script's own code: `vaekit ARGS` without the installed entry point
ENTRY = "import sys; from vaekit.app.cli import main; sys.argv[0] = 'vaekit'; sys.exit(main())"
TARGETS = {"help": 0.5, "train-help": 0.5, "models": 1.0}


def commands(scratch: Path) -> Dict[str, List[str]]:
    return {
        "help": ["--help"],
        "train-help": ["train", "--help"],
        "models": ["models"],
        "evaluate-list": ["evaluate", "--list"],
        "train-1-epoch": ["train", "--data", "digits", "--epochs", "1", "--hidden", "64", "--batch-size", "256",
                          "--no-plots", "--no-progress", "--overwrite", "--out", str(scratch / "run")],
    }


def seconds(python: str, checkout: Optional[str], args: List[str], scratch: Path) -> float:
    """Wall time of one fresh ``vaekit ARGS`` process run from ``scratch``."""
    env = None
    if checkout:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run([python, "-c", ENTRY, *args], cwd=scratch, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"vaekit {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per command and checkout")
    parser.add_argument("--python", default=sys.executable, help="interpreter with vaekit's dependencies")
    parser.add_argument("--compare", help="another checkout of vaekit (its root folder) to time alongside")
    parser.add_argument("--only", nargs="*", help="command labels to time (default: all)")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/startup.json")
    args = parser.parse_args(argv)
    checkouts = {"this": str(HERE.parent)}
    if args.compare:
        checkouts["compare"] = str(Path(args.compare).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        jobs = {k: v for k, v in commands(scratch).items() if not args.only or k in args.only}
        times = {label: {name: [] for name in checkouts} for label in jobs}
        for rep in range(args.repeats):  # interleaved: each command on each checkout, then the next repeat
            for label, cmd in jobs.items():
                order = list(checkouts.items())
                for name, checkout in order[rep % len(order):] + order[:rep % len(order)]:
                    times[label][name].append(seconds(args.python, checkout, cmd, scratch))
    rows = [{"label": label, "command": "vaekit " + " ".join(jobs[label]), "target_s": TARGETS.get(label),
             **{f"{name}_s": round(statistics.median(values), 3) for name, values in per.items()},
             "runs": {name: [round(v, 3) for v in values] for name, values in per.items()}}
            for label, per in times.items()]
    names = list(checkouts)
    print(f"median of {args.repeats} fresh processes, seconds ({platform.node()}, Python "
          f"{platform.python_version()})")
    header = ["command"] + [f"{n} ({checkouts[n]})" for n in names] + ["target"]
    print(" | ".join(header))
    for row in rows:
        target = f"< {row['target_s']}" if row["target_s"] else "no slower"
        print(" | ".join([row["label"]] + [f"{row[n + '_s']:.2f}" for n in names] + [target]))
    result = {"command": "python benchmarks/startup.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "checkouts": checkouts, "repeats": args.repeats, "machine": platform.node(),
              "python": platform.python_version(), "rows": rows}
    if args.json:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "startup.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
