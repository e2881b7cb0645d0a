"""Sharp-reconstruction baselines on real photographs at 64 px, one budget of steps each (issue 19, sec. 6).

    nice -n 15 .venv/bin/python benchmarks/sharp_baselines.py --data patches-64 --epochs 1

Five autoencoders train on the training crops of ``patches-64`` (random 64 px crops of the photographs
that ship inside installed packages; the test crops come from photos no training crop comes from) with
the same batch, seed, data order and number of optimizer steps, then are scored on the held-out test
crops with ``vaekit evaluate``'s ``psnr`` and ``ssim`` (and ``lpips``/``rfid`` where their weights files
are given; otherwise the reason they are unavailable is reported):

- ``vae-resnet``: the ``vae`` with the ``resnet`` network at a CPU size (patches_psnr.py's ``resnet-small``:
  widths 32, 64, 128, 1 block, dense 512, a 128-D vector latent), pixels only, with the Gaussian's
  "optimal" sigma (Rybkin et al. 2021, sec. 3.2) as patches_psnr.py: the ``resnet`` recipe's learned sigma
  starts at 1 and Adam at 2e-4 moves its log by about 2e-4 a step, so on a short run the KL outweighs the
  reconstruction and the latent collapses to the mean crop;
- ``autoencoder-kl-small`` without its PatchGAN (``--discriminator none``) and with it, the discriminator
  starting at a third of the budget (``--disc-start``; the recipe's 5001 lies beyond a CPU budget);
- ``vqgan-small`` with its PatchGAN, started at the same step;
- ``fsq-small``.

The recipes keep their own networks, likelihoods, learning rates and optimizers; only the batch (16, the
recipes'), the seed, the epochs and the discriminator's start are set here. No LPIPS term is used: it
needs torchvision's VGG16 weights file, which cannot be downloaded here, so the runs with the
adversarial term have it alone. Seconds per step are the training's wall and CPU seconds over its
optimizer steps (validation and checkpoints at each epoch's end included).

Writes benchmarks/results/sharp-baselines.{json,md} with the command, and docs/gallery/sharp-baselines.png:
the same held-out test crops in the first row and each model's reconstructions in a row below.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import vaekit  # noqa: E402
from vaekit.app.evaluations import evaluate_run  # noqa: E402
from vaekit.data.load import load_data  # noqa: E402
from vaekit.plots.common import DPI, new_figure, save_figure  # noqa: E402
from vaekit.plots.grid import display_pixels, grid_gap, image_grid, upscale_factor  # noqa: E402
from vaekit.plots.recon import reconstruction_pairs  # noqa: E402

# patches_psnr.py's resnet-small network and its likelihood choice (see the docstring)
VAE_RESNET = dict(model="vae", network="resnet", widths=[32, 64, 128], blocks=1, dense=512, latent_dim=128,
                  likelihood="gaussian", sigma="optimal", optimizer="adam", lr=2e-4)
MODELS: Dict[str, dict] = {
    "vae-resnet": VAE_RESNET,
    "autoencoder-kl-small": dict(recipe="autoencoder-kl-small", discriminator="none"),
    "autoencoder-kl-small+patchgan": dict(recipe="autoencoder-kl-small"),
    "vqgan-small": dict(recipe="vqgan-small"),
    "fsq-small": dict(recipe="fsq-small"),
}
ADVERSARIAL = ("autoencoder-kl-small+patchgan", "vqgan-small")  # their recipes carry the PatchGAN
METRICS = ["psnr", "ssim", "lpips", "rfid"]
RESULTS, GALLERY = HERE / "results", HERE.parent / "docs" / "gallery"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="patches-64")
    p.add_argument("--epochs", type=int, default=1, help="the budget, the same for every model")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated, from: " + ", ".join(MODELS))
    p.add_argument("--disc-start", type=float, default=1 / 3, help="the discriminator's start as a share of "
                   "the budget's steps")
    p.add_argument("--lpips-backbone", help="torchvision's VGG16 weights file (for the lpips metric)")
    p.add_argument("--lpips-lin", help="the lpips package's vgg.pth lin weights (default: the installed package's)")
    p.add_argument("--fid-weights", help="the Inception weights file (for the rfid metric)")
    p.add_argument("--figure-n", type=int, default=8, help="test crops in the figure")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="sharp-baselines", help="file stem under benchmarks/results/ and docs/gallery/")
    args = p.parse_args(argv)
    unknown = [m for m in args.models.split(",") if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if not 0 < args.disc_start < 1:
        p.error(f"--disc-start is a share of the budget between 0 and 1, got {args.disc_start}")
    return args


def budget_steps(data: str, epochs: int, batch_size: int, seed: int) -> int:
    """Optimizer steps of ``epochs`` over the training split (the trainer's default validation share)."""
    n_train = len(load_data(data, seed=seed).train)
    return epochs * math.ceil(n_train / batch_size)


def train_options(name: str, args: argparse.Namespace, steps: int) -> dict:
    options = dict(MODELS[name], epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    if name in ADVERSARIAL:
        options["disc_start"] = max(1, round(steps * args.disc_start))
    return options


def metric_options(args: argparse.Namespace) -> Dict[str, dict]:
    options: Dict[str, dict] = {}
    if args.lpips_backbone:
        options["lpips"] = {"backbone": args.lpips_backbone, **({"lin": args.lpips_lin} if args.lpips_lin else {})}
    if args.fid_weights:
        options["rfid"] = {"weights": args.fid_weights}
    return options


def measure(name: str, args: argparse.Namespace, steps: int, out: Path) -> dict:
    options = train_options(name, args, steps)
    start, cpu = time.perf_counter(), time.process_time()
    vaekit.train(args.data, out=out, progress=False, **options)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    result = evaluate_run(out, metrics=METRICS, options=metric_options(args), seed=args.seed, strict=False)
    model = vaekit.load(out)
    row = {"model": name, "options": {k: v for k, v in options.items() if k not in ("epochs", "batch_size", "seed")},
           "parameters": sum(p.numel() for p in model.parameters()), "latent": list(model.latent_shape),
           "steps": steps, "wall_s_per_step": seconds / steps, "cpu_s_per_step": cpu / steps,
           "train_wall_s": round(seconds, 1), "train_cpu_s": round(cpu, 1)}
    row.update({m: result.get(m) for m in METRICS})
    row["unavailable"] = {m: result["why_not"][m] for m in METRICS if m in result.get("why_not", {})}
    print(json.dumps(row), flush=True)
    return row


def cell(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    rows = report["rows"]
    done = f"; {report['done']} done" if "done" in report else ""
    lines = [f"`{report['command']}`", "", report["budget"] + done + f"; load average {report['load_1min']} "
             "(a shared machine: wall seconds under load)", "",
             "| model | parameters | latent | PSNR (dB) | SSIM | LPIPS | rFID | wall s / step | CPU s / step |",
             "|---" * 9 + "|"]
    for r in rows:
        latent = "x".join(str(s) for s in r["latent"])
        lines.append(f"| {r['model']} | {r['parameters']:,} | {latent} | {cell(r['psnr'], 2)} | {cell(r['ssim'], 3)} | "
                     f"{cell(r['lpips'], 3)} | {cell(r['rfid'], 1)} | {r['wall_s_per_step']:.2f} | "
                     f"{r['cpu_s_per_step']:.2f} |")
    reasons = {}
    for r in rows:
        for metric, why in r["unavailable"].items():
            reasons.setdefault(metric, why)
    lines += [""] + [f"{metric} unavailable: {why}" for metric, why in reasons.items()]
    starts = [f"{r['model']} from step {r['options']['disc_start']}" for r in rows if "disc_start" in r["options"]]
    if starts:
        lines += ["", "PatchGAN (no LPIPS term): " + ", ".join(starts)]
    return "\n".join(lines) + "\n"


def draw(originals: torch.Tensor, recons: Dict[str, torch.Tensor], path: Path, title: str) -> Path:
    """The originals in the first row, each model's reconstructions in a labelled row below."""
    images = torch.cat([originals] + [r.clamp(0, 1) for r in recons.values()])
    n = originals.shape[0]
    scale = upscale_factor(*originals.shape[2:])
    grid = image_grid(images, nrow=n, scale=scale)
    h = originals.shape[2] * scale
    gap = grid_gap(h, originals.shape[3] * scale)
    labels = ["test crops", *recons]
    margin = 0.3 + 0.075 * max(map(len, labels))  # inches for the row labels at the default font size
    width, height = grid.shape[1] / DPI + margin + 0.1, grid.shape[0] / DPI + 0.45
    fig, ax = new_figure(width, height)
    fig.set_layout_engine("none")  # the grid at 1 image px per screen px, the labels in the left margin
    ax.set_position([margin / width, 0.1 / height, grid.shape[1] / DPI / width, grid.shape[0] / DPI / height])
    ax.imshow(display_pixels(grid), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([r * (h + gap) + (h - 1) / 2 for r in range(len(labels))], labels)
    ax.set_title(title, fontsize="medium")
    return save_figure(fig, path)


def write(report: dict, originals: torch.Tensor, recons: Dict[str, torch.Tensor], stem: str) -> None:
    """The JSON, Markdown and figure of the models done so far (rewritten after each: a stopped run keeps them)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{stem}.md").write_text(markdown(report))
    draw(originals, recons, GALLERY / f"{stem}.png",
         f"held-out test crops (top), reconstructions after {report['steps']} steps")


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python benchmarks/sharp_baselines.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    steps = budget_steps(args.data, args.epochs, args.batch_size, args.seed)
    names = args.models.split(",")
    budget = (f"{steps} optimizer steps ({args.epochs} epoch(s) of the training crops of {args.data}), batch "
              f"{args.batch_size}, seed {args.seed}, for every model; torch threads {args.threads}")
    report = {"command": command, "budget": budget, "steps": steps, "rows": []}
    recons = {}
    test = load_data(args.data, seed=args.seed).test
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = Path(tmp) / name
            report["rows"].append(measure(name, args, steps, out))
            originals, recons[name] = reconstruction_pairs(vaekit.open_run(out).model, test, args.figure_n,
                                                           seed=args.seed)
            report.update(load_1min=round(os.getloadavg()[0], 2), done=f"{len(recons)} of {len(names)} models")
            write(report, originals, recons, args.out)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
