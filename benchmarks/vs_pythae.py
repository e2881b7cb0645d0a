"""vaekit and pythae side by side: training throughput, evaluation speed and quality at equal wall-clock.

    .venv/bin/python benchmarks/vs_pythae.py --pythae-python /tmp/pythae-venv/bin/python --parts mlp,eval,conv,quality

pythae lives in its own environment (``python -m venv /tmp/pythae-venv && /tmp/pythae-venv/bin/pip
install torch==2.13.0 pythae==0.1.2``); its side is benchmarks/pythae_runner.py, vaekit's is
benchmarks/vaekit_runner.py, each a fresh process. ``--parts`` (default: all four) chooses:
- ``mlp``: both train the same MLP VAE (784-H ReLU, a linear head to mu and log-variance, latent
  16, H-784 decoder, Bernoulli/BCE loss, Adam) on the same Fashion-MNIST split (54000 train, 6000
  validation), alternating which goes first, each ``--repeats`` times. A run's throughput is its
  training images over the median seconds of its epochs after the first (each library's validation
  pass included, checkpoint writing excluded); the table shows medians and the vaekit/pythae ratio,
  and each throughput as a fraction of the bound the machine's fp32 matrix-product rate (measured
  in the same invocation, at the net's largest shape and at 2048^3) implies.
- ``eval``: after the first batch size's runs, each side times encoding the test set, its ELBO and
  the importance-sampled NLL (k = ``--nll-k``) of ``--nll-n`` test images (needs ``mlp``); each
  against the bound the 2048^3 rate and torch's softplus rate (the Bernoulli log-density's
  cost, timed here too) allow (``evaluation_bound``).
- ``conv``: pythae's MNIST benchmark conv VAE in both libraries and vaekit's ``conv`` recipe, on
  capped epochs (benchmarks/vs_pythae_conv.py).
- ``quality``: each library's default MLP VAE trained for ``--quality-seconds``, then its test
  ELBO and NLL (benchmarks/vs_pythae_quality.py).

Writes benchmarks/results/vs-pythae-<data>.{json,md} (mlp, eval), vs-pythae-conv-<data>.* and
vs-pythae-quality-<data>.*, each with the exact command.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench_common import PYTHAE_RUNNER, VAEKIT_RUNNER, command_line, interleaved, median, throughput, write
from flops import matmul_rate, softplus_seconds
from vs_pythae_conv import conv_part
from vs_pythae_quality import quality_part

PARTS = ("mlp", "eval", "conv", "quality")


def flop_per_image(dim: int, hidden: int, latent: int) -> float:
    """Forward multiply-adds of the MLP VAE x 2 (FLOP) x 3 (forward + backward)."""
    macs = dim * hidden + hidden * 2 * latent + latent * hidden + hidden * dim
    return 3 * 2 * macs


def evaluation_bound(what: str, dim: int, hidden: int, latent: int, k: int, gemm_rate: float) -> float:
    """Images per second the fp32 rate allows: the matrix products (2 FLOP per multiply-add) of
    encoding (both posterior heads), of the ELBO (encoder + one decoder pass) or of the NLL
    (k decoder passes), plus, for the ELBO and NLL, the softplus of each Bernoulli logit."""
    encoder = dim * hidden + hidden * 2 * latent
    decoder = latent * hidden + hidden * dim
    macs = {"encode": encoder, "elbo": encoder + decoder, "nll": encoder + k * decoder}[what]
    logits = {"encode": 0, "elbo": dim, "nll": k * dim}[what]
    return 1.0 / (2 * macs / (gemm_rate * 1e9) + (softplus_seconds(logits) if logits else 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pythae-python", required=True, help="the python of an environment with pythae")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate in the mlp part, both sides")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--nll-n", type=int, default=200, help="test images for the importance-sampled NLL timing")
    parser.add_argument("--nll-k", type=int, default=1000)
    parser.add_argument("--conv-batch", type=int, default=100, help="pythae's benchmark net: batch size")
    parser.add_argument("--conv-steps", type=int, default=20, help="pythae's benchmark net: steps per capped epoch")
    parser.add_argument("--recipe-batch", type=int, default=128, help="the conv recipe: batch size")
    parser.add_argument("--recipe-steps", type=int, default=100, help="the conv recipe: steps per capped epoch")
    parser.add_argument("--conv-channels-last", action=argparse.BooleanOptionalAction, default=True,
                        help="also time pythae's net in vaekit with channels_last")
    parser.add_argument("--quality-seconds", type=float, default=120)
    parser.add_argument("--quality-latents", type=int, nargs="+", default=[0, 16], help="0: each library's default")
    parser.add_argument("--quality-nll-n", type=int, default=1000)
    parser.add_argument("--quality-repeats", type=int, default=1)
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or ("eval" in parts and "mlp" not in parts):
        parser.error(f"--parts takes {', '.join(PARTS)} (eval needs mlp), got {args.parts!r}")
    import vaekit

    torch.set_num_threads(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    command = command_line("vs_pythae.py", args)
    data = vaekit.load_data(args.data)
    gemm_peak = matmul_rate((2048, 2048, 2048), repeats=5)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        npz = tmp / "data.npz"
        np.savez(npz, x_train=data.train.x.numpy(), x_val=data.val.x.numpy(), x_test=data.test.x.numpy())
        if "mlp" in parts:
            mlp_part(args, data, npz, tmp, env, gemm_peak, command, evaluate="eval" in parts)
        if "conv" in parts:
            conv_part(args, data, tmp, env, gemm_peak, command)
        if "quality" in parts:
            quality_part(args, npz, tmp, env, command)


def mlp_part(args, data, npz: Path, tmp: Path, env, gemm_peak: float, command: str, evaluate: bool) -> None:
    n_train, dim = len(data.train), int(np.prod(data.info.shape))
    rates = {"mlp_gemm": {b: matmul_rate((b, dim, args.hidden)) for b in args.batch_sizes}, "square_2048": gemm_peak}
    per_image = flop_per_image(dim, args.hidden, args.latent)
    results = {}
    for b in args.batch_sizes:
        timed = evaluate and b == args.batch_sizes[0]  # evaluation is timed in the first batch size's runs
        common = ["--epochs", str(args.epochs), "--batch-size", str(b), "--hidden", str(args.hidden),
                  "--latent", str(args.latent), "--lr", str(args.lr)]  # pythae's own default would be 1e-4
        extra = ["--evaluate", "--nll-n", str(args.nll_n), "--nll-k", str(args.nll_k)] if timed else []
        jobs = [("vaekit", [sys.executable, VAEKIT_RUNNER, "--data", args.data, "--out", str(tmp / "run"), *common,
                            *extra]),
                ("pythae", [args.pythae_python, PYTHAE_RUNNER, "--npz", str(npz), *common, *extra])]
        results[b] = interleaved(jobs, args.repeats, env, {"part": "mlp", "batch": b})
    rows = []
    for b in args.batch_sizes:
        ours = median(throughput(r, n_train) for r in results[b]["vaekit"])
        theirs = median(throughput(r, n_train) for r in results[b]["pythae"])
        bound = rates["mlp_gemm"][b] * 1e9 / per_image
        peak = rates["square_2048"] * 1e9 / per_image
        rows.append({"batch": b, "vaekit_img_s": ours, "pythae_img_s": theirs, "ratio": ours / theirs,
                     "gemm_gflops": rates["mlp_gemm"][b], "bound_img_s": bound, "vaekit_of_bound": ours / bound,
                     "peak_bound_img_s": peak, "vaekit_of_peak": ours / peak,
                     "pythae_of_bound": theirs / bound,
                     "vaekit_val_loss": median(r["val_loss"] for r in results[b]["vaekit"]),
                     "pythae_val_loss": median(r["val_loss"] for r in results[b]["pythae"])})
    first = results[args.batch_sizes[0]]
    for what, n in (("encode", len(data.test)), ("elbo", len(data.test)), ("nll", args.nll_n)) if evaluate else ():
        ours = median(n / r[f"{what}_seconds"] for r in first["vaekit"])
        theirs = median(n / r[f"{what}_seconds"] for r in first["pythae"])
        value = "nll" if what == "nll" else "test_elbo"
        bound = evaluation_bound(what, dim, args.hidden, args.latent, args.nll_k, gemm_peak)
        rows.append({"evaluation": what, "vaekit_img_s": ours, "pythae_img_s": theirs, "ratio": ours / theirs,
                     "bound_img_s": bound, "vaekit_of_bound": ours / bound, "pythae_of_bound": theirs / bound,
                     "vaekit_value": median(r[value] for r in first["vaekit"]) if what != "encode" else None,
                     "pythae_value": median(r[value] for r in first["pythae"]) if what != "encode" else None})
    lines = [f"`{command}`", "",
             f"fp32 matrix product: {rates['square_2048']:.0f} GFLOP/s at 2048^3; "
             f"{per_image / 1e6:.2f} MFLOP per image (forward + backward)", "",
             "| figure | pythae | vaekit | vaekit / pythae | GEMM rate at this shape | bound at it | vaekit of it | "
             "vaekit of the 2048^3 peak |",
             "|---|---|---|---|---|---|---|---|"]
    names = {"encode": f"encoding the {len(data.test)} test images (posterior means, img/s)",
             "elbo": f"test ELBO over {len(data.test)} images (img/s)",
             "nll": f"importance-sampled NLL, k = {args.nll_k}, {args.nll_n} images (img/s)"}
    for r in rows:
        if "evaluation" in r:
            value = "" if r["vaekit_value"] is None else (f" (values: pythae {r['pythae_value']:.2f}, vaekit "
                                                          f"{r['vaekit_value']:.2f} nats)")
            lines.append(f"| {names[r['evaluation']]}{value} | {r['pythae_img_s']:,.0f} | {r['vaekit_img_s']:,.0f} | "
                         f"{r['ratio']:.2f}x | {gemm_peak:.0f} GFLOP/s (2048^3) | {r['bound_img_s']:,.0f} | "
                         f"{r['vaekit_of_bound']:.0%} (pythae {r['pythae_of_bound']:.0%}) | |")
            continue
        lines.append(f"| MLP {dim}-{args.hidden}-{args.latent} training, batch {r['batch']} (img/s) | "
                     f"{r['pythae_img_s']:,.0f} | {r['vaekit_img_s']:,.0f} | {r['ratio']:.2f}x | "
                     f"{r['gemm_gflops']:.0f} GFLOP/s | {r['bound_img_s']:,.0f} | {r['vaekit_of_bound']:.0%} | "
                     f"{r['vaekit_of_peak']:.0%} |")
    write(f"vs-pythae-{args.data}", {"command": command, "rows": rows, "matmul_gflops": rates,
                                     "flop_per_image": per_image, "runs": {str(b): r for b, r in results.items()}},
          lines)


if __name__ == "__main__":
    main()
