"""Train named recipes on a dataset for their full epochs; report test ELBO and seconds per epoch.

    .venv/bin/python benchmarks/recipes.py --data fashion-mnist --recipes mlp conv
    .venv/bin/python benchmarks/recipes.py --data digits --recipes iwae vamp factorvae vqvae ladder --iw-samples 1000

Results go to benchmarks/results/<recipe>-<data>[-<N>ep].json (and the runs to runs/bench-*).
Test ELBO is the single-sample ELBO on the dataset's official test split (seed 0),
in nats per example; seconds per epoch is the mean training time of an epoch
(training plus the validation pass, excluding checkpointing), read from the run's metrics.jsonl.
With ``--iw-samples K`` the test log-likelihood is also estimated by importance sampling
with K samples per example (seed 0), with its standard error over examples.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import vaekit
from vaekit.app.evaluations import evaluate_run


def bench(recipe: str, data: str, epochs, device: str, iw_samples: int = 0) -> dict:
    out = Path(f"runs/bench-{recipe}-{data}" + (f"-{epochs}ep" if epochs else ""))
    start = time.perf_counter()
    vaekit.train(data, recipe=recipe, out=out, overwrite=True, epochs=epochs, device=device, progress=False)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    result = evaluate_run(out, iw_samples=iw_samples)
    likelihood = {"test_log_likelihood": result["log_likelihood"],
                  "test_log_likelihood_se": result["log_likelihood_se"], "iw_samples": iw_samples} if iw_samples else {}
    return {
        "recipe": recipe, "variant": vaekit.load(out).config.model.variant, "data": data, "epochs": len(rows),
        "device": device, **likelihood,
        "test_elbo": result["elbo"], "test_recon": result["recon"], "test_kl": result["kl"],
        "test_n": result["n"], "final_val_elbo": rows[-1]["val_elbo"],
        "seconds_per_epoch_mean": statistics.mean(r["seconds"] for r in rows),
        "seconds_per_epoch_median": statistics.median(r["seconds"] for r in rows),
        "wall_seconds": wall, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "command": f"python benchmarks/recipes.py --data {data} --recipes {recipe}"
                   + (f" --epochs {epochs}" if epochs else "") + (f" --iw-samples {iw_samples}" if iw_samples else ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--recipes", nargs="+", default=["mlp", "conv"])
    parser.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--iw-samples", type=int, default=0, help="also the importance-sampled test log p(x)")
    args = parser.parse_args()
    results_dir = Path(__file__).parent / "results"
    results_dir.mkdir(exist_ok=True)
    for recipe in args.recipes:
        result = bench(recipe, args.data, args.epochs, args.device, args.iw_samples)
        suffix = f"-{args.epochs}ep" if args.epochs else ""  # short timing runs don't replace full runs
        (results_dir / f"{recipe}-{args.data}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
