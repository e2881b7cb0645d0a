"""Seconds per end-of-training plot: what ``vaekit train`` spends after the last epoch.

    .venv/bin/python benchmarks/plot_timing.py --data fashion-mnist --repeats 5

Trains one short run (``--recipe``, ``--epochs``, no plots), then draws every plot that applies to it
(``vaekit.app.plotting.write_all_plots``, as ``vaekit train`` does at its end) in ``--repeats`` fresh
processes, so each repeat pays matplotlib's import and first-figure costs as a user's run does. Reports
the median seconds of each plot, of loading the run, of reading its test split (``vaekit train`` hands the
plots the split it has loaded; before that, write_all_plots read it again) and of the whole call, with the
1-minute load average before and after (the machine may be shared). ``--compare DIR`` times a
checkout of another commit in the same runs, interleaved, with the same run directory.

Writes benchmarks/results/plot-timing.json.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent

# one fresh process: time the loads and every plot, print one JSON line
PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from vaekit.app import plotting
from vaekit.app.workflows import run_data
from vaekit.run import as_run
run = as_run(sys.argv[1]); model = run.model
seconds = {"import+load": time.perf_counter() - t0}
start = time.perf_counter()
run.test_data = run_data(run, None, "test")  # what training hands the plots (a checkout before that reloads it)
seconds["test split"] = time.perf_counter() - start
timed = {}
draw = plotting.plot_run
def timed_plot_run(run, kind, **kw):
    start = time.perf_counter()
    path = draw(run, kind, **kw)
    timed[kind] = time.perf_counter() - start
    return path
plotting.plot_run = timed_plot_run
start = time.perf_counter()
plotting.write_all_plots(run)
seconds["all plots"] = time.perf_counter() - start
print(json.dumps({**seconds, **timed}))
"""


def probe(root: Path, run_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", PROBE, str(run_dir)], env=env, check=True, capture_output=True,
                         text=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--recipe", default="mlp")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compare", type=Path, help="a checkout of another commit to time beside this one")
    args = parser.parse_args()
    command = "python benchmarks/plot_timing.py " + shlex.join(sys.argv[1:])
    sys.path.insert(0, str(HERE.parent))
    import vaekit

    trees = {"this": HERE.parent}
    if args.compare:
        trees["compare"] = args.compare.resolve()
    rows = {name: [] for name in trees}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        vaekit.train(args.data, recipe=args.recipe, epochs=args.epochs, out=run_dir, progress=False)
        for _ in range(args.repeats):
            for name, root in trees.items():  # interleaved: a load change hits both alike
                rows[name].append(probe(root, run_dir))
    load.append(os.getloadavg()[0])
    medians = {name: {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
               for name, runs in rows.items()}
    result = {"command": command, "data": args.data, "recipe": args.recipe, "repeats": args.repeats,
              "load_1min_before_after": [round(v, 2) for v in load], "median_seconds": medians,
              "note": "the machine is shared by other jobs; see the load average"}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "plot-timing.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
