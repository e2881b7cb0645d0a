"""Time and peak memory of the importance-sampled log p(x) over a whole test split.

    python benchmarks/likelihood_speed.py RUN [--k 1000] [--n 10000] [--json FILE]

Runs ``vaekit evaluate RUN --metrics nll --k K`` in-process on the first N test examples and
reports the wall time, examples per second and the process's peak resident memory.
"""
import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch

import vaekit
from vaekit.app.workflows import run_data
from vaekit.evaluate import evaluate_log_likelihood


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    model = vaekit.load(args.run)
    data = run_data(model)
    data = data.subset(torch.arange(min(args.n, len(data))))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch.manual_seed(0)
    start = time.perf_counter()
    r = evaluate_log_likelihood(model, data, k=args.k)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"run": args.run, "k": args.k, "n": len(data), "seconds": round(seconds, 1),
           "examples_per_second": round(len(data) / seconds, 1), "peak_rss_mib": round(peak),
           "rss_before_mib": round(before), "log_likelihood": r["log_likelihood"], "se": r["log_likelihood_se"],
           "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
