"""Every zoo variant trained on one dataset at one shared budget: test ELBO, MSE and seconds per epoch.

    .venv/bin/python benchmarks/zoo_table.py --data fashion-mnist --epochs 2

The shared budget: the same data (the dataset's own train/validation split, seed 0), the same
MLP network (``--hidden``, default 512), the same batch size, learning rate and number of
epochs for every variant, each from ``vaekit train --model NAME`` with its own parts and
objective. The latent dimension is ``--latent-dim`` (default 16) unless the variant fixes its
own (``vaekit models --json`` shows its config); the table shows which. Each variant's run goes
to runs/zoo-<data>/<name>; a variant that fails is reported with its error, not skipped.

Columns, all on the official test split with metrics seed 0:
- ``test ELBO`` in nats per example (the single-sample bound each model reports; for gumbel-vae
  Jang et al.'s surrogate, see its docstring); absent where a model has no likelihood (plain and
  regularized autoencoders), which are compared by MSE;
- ``bits/dim``: -log2 P(x) / D through the ELBO where the likelihood makes it a probability of
  the 8-bit data (exact for the pmfs categorical256 and dlogistic; dequantized for densities);
  absent for a Bernoulli on grey values, which is not a distribution over them. ELBOs of
  different likelihoods compare only through this column;
- ``test MSE`` of the reconstruction from the posterior mean, per value;
- ``s/epoch``: the mean seconds of a training epoch (its validation pass included, checkpointing
  excluded), from the run's metrics.jsonl; the machine is shared, so compare within one table.

Writes benchmarks/results/zoo-<data>.json and zoo-<data>.md (the README's table); with
``--variants`` zoo-<data>-partial.*.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import traceback
from pathlib import Path

import torch

import vaekit
from vaekit.app.evaluations import evaluate_run
from vaekit.app.options import apply_options, base_config
from vaekit.registry import VARIANTS


def own_latent_dim(name: str) -> bool:
    """True when the variant's config fixes its latent dimension (groups of categories, a sphere ...)."""
    return "latent_dim" in VARIANTS.get(name).config.get("model", {})


def bench(name: str, args) -> dict:
    out = Path(f"runs/zoo-{args.data}/{name}")
    options = dict(model=name, epochs=args.epochs, hidden=args.hidden, batch_size=args.batch_size, lr=args.lr,
                   seed=0, progress=False)
    if not own_latent_dim(name):
        options["latent_dim"] = args.latent_dim
    start = time.perf_counter()
    model = vaekit.train(args.data, out=out, overwrite=True, **options)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    result = evaluate_run(out, metrics=["default"])  # elbo, recon, au; a group skips what does not apply
    return {"variant": name, "latent_dim": model.latent_dim, "parameters": model.num_parameters(),
            "test_elbo": result.get("elbo"), "test_recon": result.get("recon"), "test_mse": result.get("mse"),
            "bits_per_dim": result.get("bits_per_dim"), "likelihood": result.get("likelihood"),
            "seconds_per_epoch": statistics.mean(r["seconds"] for r in rows), "wall_seconds": wall,
            "epochs": len(rows)}


def markdown(results: list, command: str) -> str:
    lines = [f"`{command}`", "",
             "| variant | latent | likelihood | test ELBO (nats) | bits/dim | test MSE | s/epoch |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| `{r['variant']}` | | | failed: {r['error']} | | | |")
            continue
        elbo = "n/a (no likelihood)" if r["test_elbo"] is None else f"{r['test_elbo']:.2f}"
        bits = "" if r["bits_per_dim"] is None else f"{r['bits_per_dim']:.3f}"
        lines.append(f"| `{r['variant']}` | {r['latent_dim']} | {r['likelihood'] or ''} | {elbo} | {bits} | "
                     f"{r['test_mse']:.4f} | {r['seconds_per_epoch']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512])
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--variants", nargs="+", default=None, help="default: every variant of `vaekit models`")
    parser.add_argument("--render", action="store_true", help="only redraw the Markdown from the saved JSON")
    args = parser.parse_args()
    results_dir = Path(__file__).parent / "results"
    if args.render:
        stem = f"zoo-{args.data}" + ("-partial" if args.variants else "")
        report = json.loads((results_dir / f"{stem}.json").read_text())
        (results_dir / f"{stem}.md").write_text(markdown(report["results"], report["command"]))
        print(markdown(report["results"], report["command"]))
        return
    names = args.variants or VARIANTS.names()
    base_config()  # registers every part before the names are read
    command = (f"python benchmarks/zoo_table.py --data {args.data} --epochs {args.epochs} --hidden "
               f"{' '.join(map(str, args.hidden))} --latent-dim {args.latent_dim} --batch-size {args.batch_size} "
               f"--lr {args.lr}" + (f" --variants {' '.join(args.variants)}" if args.variants else ""))
    results = []
    for name in names:
        apply_options(base_config(), {"model": name})  # an unknown name fails before any training
        try:
            results.append(bench(name, args))
        except Exception as e:  # one broken variant is a row of the table, not the end of it
            traceback.print_exc()
            results.append({"variant": name, "error": f"{type(e).__name__}: {e}".splitlines()[0][:200]})
        print(json.dumps(results[-1]), flush=True)
    report = {"command": command, "data": args.data, "epochs": args.epochs, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "results": results}
    results_dir.mkdir(exist_ok=True)
    stem = f"zoo-{args.data}" + ("-partial" if args.variants else "")  # a subset never replaces the table
    (results_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (results_dir / f"{stem}.md").write_text(markdown(results, command))
    print(markdown(results, command))


if __name__ == "__main__":
    main()
