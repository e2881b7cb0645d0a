"""Traversals of the vector-latent ``resnet`` model on ``shapes-color``: one latent dimension at a time.

    .venv/bin/python benchmarks/shapes_traversal.py --epochs 20 --beta 4
    .venv/bin/python benchmarks/shapes_traversal.py --data shapes-color-20000-px32 --objective capacity

Trains the ``resnet`` recipe's network family with a vector latent on ``shapes-color`` (sprites with six
known factors: shape, scale, rotation, x, y, colour; 64 px, or 32 px block means with ``-px32``) as a
beta-VAE (Higgins et al. 2017: a Bernoulli likelihood, latent 10, beta > 1 pressing each factor into its
own dimension) or with capacity annealing (``--objective capacity``, Burgess et al. 2018: the KL pulled
to a target that rises to ``--c-max`` nats over ``--warmup`` epochs), with widths small enough for a CPU,
then draws ``vaekit plot RUN traversal`` (the most active dimensions, one row each) into
docs/gallery/shapes-color-traversal.png and writes the run's test ELBO, KL per dimension and active
units to benchmarks/results/shapes-color-traversal.json with the command. (``vaekit evaluate --metrics
disentanglement`` refuses colour shapes so far: its ground truth renders grey sprites.)
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import vaekit  # noqa: E402
from vaekit.app.evaluations import evaluate_run  # noqa: E402
from vaekit.app.plotting import plot_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shapes-color-20000")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=0.0, help="a wall budget instead: train --epochs, then "
                        "resume one epoch at a time (bit-exact, as one longer run) until this many minutes passed")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out (its own settings) for "
                        "--minutes more, then draw and evaluate it again")
    parser.add_argument("--beta", type=float, default=4.0)
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--widths", default="16,32,64,64")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--objective", choices=("beta-vae", "capacity"), default="beta-vae")
    parser.add_argument("--gamma", type=float, default=1000.0, help="capacity: weight of |KL - C|")
    parser.add_argument("--c-max", type=float, default=25.0, help="capacity: the final target C, nats")
    parser.add_argument("--warmup", type=int, default=0, help="epochs of KL warm-up (capacity: of C's ramp)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/shapes-color-resnet"))
    parser.add_argument("--picture", type=Path, default=Path("docs/gallery/shapes-color-traversal.png"))
    parser.add_argument("--results", type=Path, default=HERE / "results" / "shapes-color-traversal.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python benchmarks/shapes_traversal.py " + shlex.join(sys.argv[1:])
    start = time.perf_counter()
    objective = ({"beta": args.beta} if args.objective == "beta-vae" else
                 {"sets": [f"train.objective.args.gamma={args.gamma}", f"train.objective.args.c_max={args.c_max}"]})
    earlier = json.loads(args.results.read_text()) if args.resume and args.results.exists() else {}
    if args.resume:
        epochs, done = max(row["epoch"] for row in vaekit.open_run(args.out).metrics()), 0
    else:
        epochs = done = args.epochs
        widths = [int(w) for w in args.widths.split(",")]
        vaekit.train(args.data, recipe="resnet", widths=widths, blocks=1, dense=256, latent_dim=args.latent_dim,
                     likelihood="bernoulli", model=args.objective, lr=args.lr, batch_size=args.batch_size,
                     warmup=args.warmup, epochs=args.epochs, out=args.out, overwrite=True, progress=False, **objective)
    while done == 0 or time.perf_counter() - start < 60 * args.minutes * done / (done + 1):  # room for one more
        epochs, done = epochs + 1, done + 1
        vaekit.train(out=args.out, resume=True, epochs=epochs, progress=False)
    seconds = time.perf_counter() - start
    plot_run(args.out, "traversal", out=str(args.picture))
    result = evaluate_run(args.out, metrics=["elbo", "recon", "au"])  # disentanglement: grey shapes only (so far)
    summary = {"command": " then ".join(filter(None, [earlier.get("command"), command])), "epochs": epochs,
               "train_seconds": round(seconds + earlier.get("train_seconds", 0), 1),
               "load_1min": round(os.getloadavg()[0], 2),
               "picture": str(args.picture), "evaluation": result}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
