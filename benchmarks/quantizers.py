"""The four quantizers side by side on a ResNet latent map: reconstruction and codebook use at equal bits.

    .venv/bin/python benchmarks/quantizers.py --data digits --epochs 10

Each of vqvae, vqgan and fsq gets 6 bits per map position (64 codes; FSQ levels 4,4,2,2), rvq 4 stages of
64 codes (24 bits); the same tiny ResNet (widths 16, 32, 1 block, 4 latent channels: a 4 x 4 map for 8 px
digits), Bernoulli likelihood, batch 64, seed 0. Reported on the test split: recon (mse, psnr) and
codebook (usage, perplexity, bits_per_code), with seconds of training. Results go to
benchmarks/results/quantizers-<data>.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import vaekit
from vaekit.app.evaluations import evaluate_run

SETS = {"vqvae": ["model.structure.args.codes=64"],
        "vqgan": ["model.structure.args.codes=64"],
        "fsq": ["model.structure.args.levels=[4,4,2,2]"],
        "rvq": ["model.structure.args.codes=64", "model.structure.args.stages=4",
                "model.structure.args.restart_after=20"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    rows = {}
    for name, sets in SETS.items():
        out = Path(f"runs/bench-quantizers-{name}-{args.data}")
        start = time.perf_counter()
        vaekit.train(args.data, model=name, network="resnet", widths=[16, 32], blocks=1, latent_channels=4,
                     likelihood="bernoulli", epochs=args.epochs, batch_size=64, seed=0, sets=sets, out=out,
                     progress=False, overwrite=True)
        seconds = time.perf_counter() - start
        result = evaluate_run(out, metrics=["recon", "codebook"])
        rows[name] = {k: result[k] for k in ("mse", "psnr", "usage", "perplexity", "bits_per_code")}
        rows[name]["train_seconds"] = round(seconds, 1)
        print(name, rows[name], flush=True)
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path(f"benchmarks/results/quantizers-{args.data}.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("| model | psnr (dB) | usage | perplexity | bits per position | train s |\n|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['psnr']:.2f} | {r['usage']:.3f} | {r['perplexity']:.1f} | {r['bits_per_code']:.0f} | "
              f"{r['train_seconds']} |")


if __name__ == "__main__":
    main()
