"""What the side-by-side benchmarks share: fresh processes run in interleaved order, medians,
the exact command line, and JSON plus Markdown outputs in benchmarks/results/."""
from __future__ import annotations

import json
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VAEKIT_RUNNER = str(HERE / "vaekit_runner.py")
PYTHAE_RUNNER = str(HERE / "pythae_runner.py")


def run(cmd: Sequence[str], env) -> dict:
    """Run ``cmd`` in a fresh process; its last stdout line is a JSON object."""
    done = subprocess.run(list(cmd), capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd[:2])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def interleaved(jobs: List[Tuple[str, List[str]]], repeats: int, env, label: dict) -> Dict[str, List[dict]]:
    """Every job once per repeat, fresh processes, the order rotated each repeat so no job always
    runs first (or right after the same neighbour); each result is printed as it comes."""
    results = {name: [] for name, _ in jobs}
    for rep in range(repeats):
        shift = rep % len(jobs)
        for name, cmd in jobs[shift:] + jobs[:shift]:
            result = run(cmd, env)
            results[name].append(result)
            print(json.dumps({**label, "job": name, "repeat": rep, **result}), flush=True)
    return results


def throughput(result: dict, n_train: int) -> float:
    """Images per second: ``n_train`` over the median epoch after the first (the first warms up)."""
    seconds = result["epoch_seconds"][1:] or result["epoch_seconds"]
    return n_train / statistics.median(seconds)


def median(values) -> float:
    return statistics.median(list(values))


def command_line(script: str, args, pythae_option: str = "pythae_python") -> str:
    """The invocation with every option spelled out (the pythae interpreter as PYTHAE_PYTHON; a
    false switch as ``--no-NAME``, argparse.BooleanOptionalAction's spelling)."""
    words = ["python", f"benchmarks/{script}"]
    for key, value in vars(args).items():
        flag = "--" + key.replace("_", "-")
        if key == pythae_option:
            value = "PYTHAE_PYTHON"
        if isinstance(value, bool):
            words += [flag if value else "--no-" + flag[2:]]
        elif isinstance(value, (list, tuple)):
            words += [flag, *map(str, value)]
        elif value is not None:
            words += [flag, str(value)]
    return " ".join(words)


def machine() -> dict:
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(), "python": sys.version.split()[0]}


def write(name: str, report: dict, lines: List[str]) -> None:
    """benchmarks/results/NAME.json (``report``, plus the machine) and NAME.md (``lines``), echoed."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({**report, **machine()}, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
