"""Reconstruction quality on real colour photographs as the network grows: conv < resnet-small < resnet.

    .venv/bin/python benchmarks/patches_psnr.py --data patches-32 --epochs 5

Each network trains on the training crops of ``patches`` (random crops of the photographs that ship
inside installed packages; the test crops come from photos no training crop comes from) with the
same latent size, likelihood, optimizer, batch and epochs, then is evaluated on the held-out test
crops: PSNR of the reconstructions (dB), squared error, the test ELBO, active units. A fourth row,
the spatial-latent ``autoencoder-kl-small``, reports active units and KL per latent channel.

Writes benchmarks/results/patches-psnr.{json,md} with the command.
"""
from __future__ import annotations

import argparse
import json
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
COMMON = dict(latent_dim=128, likelihood="gaussian", sigma="learned", optimizer="adam", lr=2e-4, batch_size=64)
NETWORKS = {
    "conv": dict(network="conv", widths=[32, 64], dense=512),
    "resnet-small": dict(recipe="resnet", widths=[32, 64, 128], blocks=1, dense=512),
    "resnet": dict(recipe="resnet"),
}


def measure(name: str, options: dict, data: str, epochs: int, seed: int, out: Path) -> dict:
    start = time.perf_counter()
    run_dir = out / name
    if name == "autoencoder-kl-small":
        vaekit.train(data, recipe="autoencoder-kl-small", epochs=epochs, seed=seed, out=run_dir, progress=False)
    else:
        vaekit.train(data, **{**COMMON, **options}, epochs=epochs, seed=seed, out=run_dir, progress=False)
    seconds = time.perf_counter() - start
    model = vaekit.load(run_dir)
    result = evaluate_run(run_dir, metrics=["recon", "elbo", "au"], seed=seed)
    row = {"network": name, "parameters": sum(p.numel() for p in model.parameters()),
           "latent": list(model.latent_shape), "train_seconds": round(seconds, 1),
           "psnr": result.get("psnr"), "mse": result.get("mse"), "elbo": result.get("elbo"),
           "active_units": result.get("active_units"), "latent_dims": result.get("latent_dims")}
    for key in ("latent_channels", "kl_per_channel"):
        if key in result:
            row[key] = result[key]
    print(json.dumps(row), flush=True)
    return row


def markdown(rows, command: str) -> str:
    lines = [f"`{command}`", "", "| network | parameters | latent | PSNR (dB) | MSE | test ELBO (nats) | "
             "active units | train s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        latent = "x".join(str(s) for s in r["latent"])
        active = f"{r['active_units']} of {r.get('latent_channels', r['latent_dims'])}"
        lines.append(f"| {r['network']} | {r['parameters']:,} | {latent} | {r['psnr']:.2f} | {r['mse']:.5f} | "
                     f"{r['elbo']:.1f} | {active} | {r['train_seconds']:.0f} |")
    spatial = [r for r in rows if "kl_per_channel" in r]
    for r in spatial:
        kl = ", ".join(f"{v:.1f}" for v in r["kl_per_channel"])
        lines += ["", f"{r['network']}: KL per latent channel (nats per example, summed over positions): {kl}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="patches-32")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--networks", default="conv,resnet-small,resnet,autoencoder-kl-small")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python benchmarks/patches_psnr.py " + shlex.join(sys.argv[1:])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.networks.split(","):
            rows.append(measure(name, NETWORKS.get(name, {}), args.data, args.epochs, args.seed, Path(tmp)))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "patches-psnr.json").write_text(json.dumps({"command": command, "rows": rows}, indent=2))
    (results / "patches-psnr.md").write_text(markdown(rows, command))
    print(markdown(rows, command))


if __name__ == "__main__":
    main()
