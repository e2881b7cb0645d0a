"""Time and peak memory of the importance-sampled log p(x) over a whole test split.

    python benchmarks/likelihood_speed.py RUN [--k 1000] [--n 10000] [--json FILE]

Runs ``vaekit evaluate RUN --metrics nll --k K`` in-process on the first N test examples and
reports the wall time, examples per second and the process's peak resident memory. With
``--ab M`` it first times, on M examples, three interleaved rounds of encoding each example
once (the one-latent VAE's ``forward_many``) against repeating the batch K times, and
reports the medians.
"""
import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

import torch

import vaekit
from vaekit.app.workflows import run_data
from vaekit.evaluate import evaluate_log_likelihood, log_likelihood
from vaekit.models.helpers import evaluating


class Repeating(torch.nn.Module):
    """The same model without ``forward_many``: importance sampling repeats the batch k times."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.num_classes = inner, None

    def forward(self, x, c=None):
        return self.inner(x, c)


def ab(model, x, k: int, rounds: int = 3) -> dict:
    """Median examples per second of both paths, interleaved rounds, batches of 64."""
    rates = {"encode_once": [], "repeat_batch": []}
    with evaluating(model):
        log_likelihood(model, x[:64], None, 10)  # warm-up
        for _ in range(rounds):
            for name, m in (("encode_once", model), ("repeat_batch", Repeating(model))):
                start = time.perf_counter()
                for i in range(0, len(x), 64):
                    log_likelihood(m, x[i:i + 64], None, k)
                rates[name].append(len(x) / (time.perf_counter() - start))
    return {name: round(statistics.median(v), 1) for name, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--json", default=None)
    parser.add_argument("--ab", type=int, default=0, help="also compare both paths on this many examples")
    args = parser.parse_args()
    run = vaekit.open_run(args.run)
    model, data = run.model, run_data(run)
    data = data.subset(torch.arange(min(args.n, len(data))))
    rates = ab(model, data.x[:args.ab], args.k) if args.ab else None
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
    if rates:
        out["ab_examples"], out["ab_examples_per_second"] = args.ab, rates
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
