"""Reconstruction quality on real colour photographs as the network grows: conv < resnet-small < resnet.

    .venv/bin/python benchmarks/patches_psnr.py --data patches-32 --epochs 10

The budget is fixed in optimizer steps: each network trains on the training crops of ``patches``
(random crops of the photographs that ship inside installed packages; the test crops come from photos
no training crop comes from) for the same epochs, with the same latent size, likelihood, optimizer,
batch, seed and so the same batches, then is evaluated on the held-out test crops: PSNR of the
reconstructions (dB), squared error, the test ELBO and KL, active units and KL per latent dimension.
Wall and CPU seconds are reported beside them (the larger networks cost more per step), and the PSNR on the
validation crops (from the training photos), which tells fitting the training photos from carrying over to
other ones. The photos used are written with the results: without scikit-image installed there are only
scikit-learn's two, so the network trains on crops of one photo (china.jpg) and is tested on another
(flower.jpg), and most of the test error is each crop's mean colour (README, "Real photographs"). A fourth row,
the spatial-latent ``autoencoder-kl-small``, reports active units and KL per latent channel.

The likelihood is a Gaussian with the "optimal" sigma (sigma^2 = the batch's squared error; Rybkin et
al. 2021, sec. 3.2). With ``--sigma learned`` (the ``resnet`` recipe's), log sigma starts at 0 and Adam
at 2e-4 moves it about 2e-4 a step, so for the first thousands of steps sigma is about 1, the KL
outweighs the reconstruction of [0, 1] pixels, and every network collapses to the mean crop: a short
run then ranks nothing but noise (an earlier 5-epoch run: conv 14.34 dB, resnet-small 12.68 dB).

Writes benchmarks/results/patches-psnr.{json,md} with the command.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import vaekit  # noqa: E402
from vaekit.app.evaluations import evaluate_run  # noqa: E402

# the same latent, likelihood and trainer for the three vector-latent networks; only the network differs
COMMON = dict(latent_dim=128, likelihood="gaussian", optimizer="adam", lr=2e-4, batch_size=64)
NETWORKS = {
    "conv": dict(network="conv", widths=[32, 64], dense=512),
    "resnet-small": dict(recipe="resnet", widths=[32, 64, 128], blocks=1, dense=512),
    "resnet": dict(recipe="resnet"),
}


def measure(name: str, options: dict, data: str, epochs: int, seed: int, sigma: str, out: Path,
            trainer: dict) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    run_dir = out / name
    if name == "autoencoder-kl-small":
        vaekit.train(data, recipe="autoencoder-kl-small", epochs=epochs, seed=seed, out=run_dir, progress=False,
                     batch_size=trainer["batch_size"])  # the same batches; its recipe's own rate and loss
    else:
        vaekit.train(data, **{**COMMON, **options, **trainer}, sigma=sigma, epochs=epochs, seed=seed, out=run_dir,
                     progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    model = vaekit.load(run_dir)
    result = evaluate_run(run_dir, metrics=["recon", "elbo", "au"], seed=seed)
    # the validation crops come from the training photos: beside the test PSNR, how far the network fits them
    val_psnr = evaluate_run(run_dir, split="val", metrics=["recon"], seed=seed).get("psnr")
    row = {"network": name, "parameters": sum(p.numel() for p in model.parameters()),
           "latent": list(model.latent_shape), "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu, 1),
           "psnr": result.get("psnr"), "val_psnr": val_psnr, "mse": result.get("mse"), "elbo": result.get("elbo"),
           "kl": result.get("kl"),
           "active_units": result.get("active_units"), "latent_dims": result.get("latent_dims")}
    for key in ("latent_channels", "kl_per_channel", "kl_per_dim"):
        if key in result:
            row[key] = result[key]
    print(json.dumps(row), flush=True)
    return row


def photos(data: str) -> dict:
    """The training and test photos of a ``patches`` name: without scikit-image only scikit-learn's two
    (one to train on, one to test), so the test is the step from one photo to another."""
    from vaekit.data.patches import load_patches, parse_patches

    parsed = parse_patches(data)
    return load_patches(*parsed).extra["photos"] if parsed else {}


def markdown(rows, command: str, used: dict) -> str:
    seen = "; ".join(f"{k}: {', '.join(v)}" for k, v in used.items())
    lines = [f"`{command}`", "", *([f"photos: {seen}", ""] if seen else []),
             "| network | parameters | latent | PSNR (dB) | val PSNR (dB) | MSE | test ELBO (nats) | test KL (nats) | "
             "active units | largest KL per dim (nats) | train s (CPU s) |", "|---" * 11 + "|"]
    for r in rows:
        latent = "x".join(str(s) for s in r["latent"])
        active = f"{r['active_units']} of {r.get('latent_channels', r['latent_dims'])}"
        top = ", ".join(f"{v:.1f}" for v in sorted(r.get("kl_per_dim") or [], reverse=True)[:5]) or "-"
        lines.append(f"| {r['network']} | {r['parameters']:,} | {latent} | {r['psnr']:.2f} | "
                     f"{r['val_psnr']:.2f} | {r['mse']:.5f} | "
                     f"{r['elbo']:.1f} | {r['kl']:.1f} | {active} | {top} | {r['train_seconds']:.0f} "
                     f"({r['train_cpu_seconds']:.0f}) |")
    spatial = [r for r in rows if "kl_per_channel" in r]
    for r in spatial:
        kl = ", ".join(f"{v:.1f}" for v in r["kl_per_channel"])
        lines += ["", f"{r['network']}: KL per latent channel (nats per example, summed over positions): {kl}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="patches-32")
    parser.add_argument("--epochs", type=int, default=10, help="the budget: the same epochs (optimizer steps) "
                        "for every network")
    parser.add_argument("--sigma", default="optimal", help="the Gaussian likelihood's sigma (see above)")
    parser.add_argument("--out", default="patches-psnr", help="results file stem under benchmarks/results/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--networks", default="conv,resnet-small,resnet,autoencoder-kl-small")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=COMMON["batch_size"], help="the same for every network")
    parser.add_argument("--lr", type=float, default=COMMON["lr"], help="Adam's rate, the same for every network")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python benchmarks/patches_psnr.py " + shlex.join(sys.argv[1:])
    rows, used = [], photos(args.data)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    budget = (f"{args.epochs} epochs of {args.data}, batch {args.batch_size}, Adam lr {args.lr}, for every network; "
              f"threads {args.threads}; autoencoder-kl-small: the batch only, with its recipe's own rate and loss")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.networks.split(","):  # the files are rewritten after each network: a cut run keeps its rows
            rows.append(measure(name, NETWORKS.get(name, {}), args.data, args.epochs, args.seed, args.sigma,
                                Path(tmp), {"batch_size": args.batch_size, "lr": args.lr}))
            (results / f"{args.out}.json").write_text(json.dumps(
                {"command": command, "budget": budget, "photos": used, "rows": rows,
                 "load_1min": round(os.getloadavg()[0], 2)},
                indent=2))
            (results / f"{args.out}.md").write_text(markdown(rows, command, used))
    print(markdown(rows, command, used))


if __name__ == "__main__":
    main()
