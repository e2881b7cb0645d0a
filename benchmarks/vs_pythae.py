"""vaekit and pythae side by side: MLP VAE training throughput on the same data, network and batch.

    .venv/bin/python benchmarks/vs_pythae.py --pythae-python /tmp/pythae-venv/bin/python --epochs 3 --repeats 3

pythae lives in its own environment (``python -m venv /tmp/pythae-venv && /tmp/pythae-venv/bin/pip
install torch==2.13.0 pythae==0.1.2``); its side is benchmarks/pythae_runner.py. Both train the
same network (784-H ReLU, a linear head to mu and log-variance, latent 16, H-784 decoder,
Bernoulli/BCE loss, Adam) on the same Fashion-MNIST split (54000 train, 6000 validation) in
fresh processes, alternating which goes first, each ``--repeats`` times. A run's throughput is
its training images divided by the median seconds of its epochs after the first (each library's
validation pass included, checkpoint writing excluded); the table shows the median over repeats
and the vaekit/pythae ratio.

The machine's fp32 matrix-product rate is measured in the same invocation (a (B, 784) x
(784, H) product, the network's largest, and a 2048^3 one), and each throughput is shown as a
fraction of the bound it implies: rate / FLOP per image (forward plus backward, three times the
forward's multiply-adds x 2).

Writes benchmarks/results/vs-pythae-<data>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
VAEKIT_RUN = """
import json, sys, time, torch, vaekit
from vaekit import rundir
from vaekit.evaluate import evaluate_elbo, evaluate_log_likelihood
from vaekit.models.helpers import posterior_moments
out, epochs, batch, hidden, latent, seed, nll_n, nll_k = sys.argv[1], *map(int, sys.argv[2:9])
model = vaekit.train("{data}", out=out, overwrite=True, epochs=epochs, batch_size=batch, hidden=[hidden],
                     latent_dim=latent, lr=1e-3, seed=seed, model="vae", progress=False)
rows = [json.loads(l) for l in (rundir.Path(out) / rundir.METRICS).read_text().splitlines() if l.strip()]
result = {{"library": "vaekit", "epoch_seconds": [r["seconds"] for r in rows], "val_loss": -rows[-1]["val_elbo"]}}
if nll_n:
    test = vaekit.load_data("{data}").test
    start = time.perf_counter(); posterior_moments(model, test, batch_size=1000)
    result["encode_seconds"] = time.perf_counter() - start
    start = time.perf_counter(); result["test_elbo"] = evaluate_elbo(model, test, batch_size=1000)["elbo"]
    result["elbo_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    result["nll"] = -evaluate_log_likelihood(model, test.subset(torch.arange(nll_n)), k=nll_k)["log_likelihood"]
    result.update(nll_seconds=time.perf_counter() - start, n_test=len(test), nll_n=nll_n, nll_k=nll_k)
print(json.dumps(result))
"""


def matmul_rate(shape, repeats: int = 20) -> float:
    """GFLOP/s of torch.mm at (m, k) x (k, n): the median of ``repeats`` timed products."""
    m, k, n = shape
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * m * k * n / statistics.median(times) / 1e9


def flop_per_image(dim: int, hidden: int, latent: int) -> float:
    """Forward multiply-adds of the MLP VAE x 2 (FLOP) x 3 (forward + backward)."""
    macs = dim * hidden + hidden * 2 * latent + latent * hidden + hidden * dim
    return 3 * 2 * macs


def run(cmd, env) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def throughput(result: dict, n_train: int) -> float:
    seconds = result["epoch_seconds"][1:] or result["epoch_seconds"]
    return n_train / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pythae-python", required=True, help="the python of an environment with pythae")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--nll-n", type=int, default=200, help="test images for the importance-sampled NLL timing")
    parser.add_argument("--nll-k", type=int, default=1000)
    args = parser.parse_args()
    import vaekit

    torch.set_num_threads(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    data = vaekit.load_data(args.data)
    n_train, dim = len(data.train), int(np.prod(data.info.shape))
    rates = {"mlp_gemm": {b: matmul_rate((b, dim, args.hidden)) for b in args.batch_sizes},
             "square_2048": matmul_rate((2048, 2048, 2048), repeats=5)}
    per_image = flop_per_image(dim, args.hidden, args.latent)
    results = {b: {"vaekit": [], "pythae": []} for b in args.batch_sizes}
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        np.savez(npz, x_train=data.train.x.numpy(), x_val=data.val.x.numpy(), x_test=data.test.x.numpy())
        for rep in range(args.repeats):
            for b in args.batch_sizes:
                common = [str(args.epochs), str(b), str(args.hidden), str(args.latent)]
                evaluate = b == args.batch_sizes[0]  # evaluation is timed once per repeat, after the first batch size
                ours = [sys.executable, "-c", VAEKIT_RUN.format(data=args.data), str(Path(tmp) / "run"), *common,
                        str(rep), str(args.nll_n if evaluate else 0), str(args.nll_k)]
                theirs = [args.pythae_python, str(HERE / "pythae_runner.py"), "--npz", str(npz), "--epochs",
                          common[0], "--batch-size", common[1], "--hidden", common[2], "--latent", common[3],
                          "--nll-n", str(args.nll_n), "--nll-k", str(args.nll_k)] + (["--evaluate"] if evaluate else [])
                order = [("vaekit", ours), ("pythae", theirs)]
                for library, cmd in (order if rep % 2 == 0 else order[::-1]):
                    result = run(cmd, env)
                    results[b][library].append(result)
                    print(json.dumps({"batch": b, "repeat": rep, **result}), flush=True)
    rows = []
    for b in args.batch_sizes:
        ours = statistics.median(throughput(r, n_train) for r in results[b]["vaekit"])
        theirs = statistics.median(throughput(r, n_train) for r in results[b]["pythae"])
        bound = rates["mlp_gemm"][b] * 1e9 / per_image
        peak = rates["square_2048"] * 1e9 / per_image
        rows.append({"batch": b, "vaekit_img_s": ours, "pythae_img_s": theirs, "ratio": ours / theirs,
                     "gemm_gflops": rates["mlp_gemm"][b], "bound_img_s": bound, "vaekit_of_bound": ours / bound,
                     "peak_bound_img_s": peak, "vaekit_of_peak": ours / peak,
                     "pythae_of_bound": theirs / bound,
                     "vaekit_val_loss": statistics.median(r["val_loss"] for r in results[b]["vaekit"]),
                     "pythae_val_loss": statistics.median(r["val_loss"] for r in results[b]["pythae"])})
    first = results[args.batch_sizes[0]]
    for what, n in (("encode", len(data.test)), ("elbo", len(data.test)), ("nll", args.nll_n)):
        ours = statistics.median(n / r[f"{what}_seconds"] for r in first["vaekit"])
        theirs = statistics.median(n / r[f"{what}_seconds"] for r in first["pythae"])
        rows.append({"evaluation": what, "vaekit_img_s": ours, "pythae_img_s": theirs, "ratio": ours / theirs,
                     "vaekit_value": statistics.median(r.get("nll" if what == "nll" else "test_elbo", 0.0)
                                                       for r in first["vaekit"]) if what != "encode" else None,
                     "pythae_value": statistics.median(r.get("nll" if what == "nll" else "test_elbo", 0.0)
                                                       for r in first["pythae"]) if what != "encode" else None})
    command = (f"python benchmarks/vs_pythae.py --pythae-python PYTHAE_PYTHON --data {args.data} --epochs "
               f"{args.epochs} --repeats {args.repeats} --batch-sizes {' '.join(map(str, args.batch_sizes))} "
               f"--hidden {args.hidden} --latent {args.latent} --threads {args.threads} --nll-n {args.nll_n} "
               f"--nll-k {args.nll_k}")
    report = {"command": command, "rows": rows, "matmul_gflops": rates, "flop_per_image": per_image,
              "threads": args.threads, "torch": torch.__version__, "machine": platform.processor() or
              platform.machine(), "runs": {str(b): r for b, r in results.items()}}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"vs-pythae-{args.data}.json").write_text(json.dumps(report, indent=2) + "\n")
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
                         f"{r['ratio']:.2f}x | | | | |")
            continue
        lines.append(f"| MLP {dim}-{args.hidden}-{args.latent} training, batch {r['batch']} (img/s) | "
                     f"{r['pythae_img_s']:,.0f} | {r['vaekit_img_s']:,.0f} | {r['ratio']:.2f}x | "
                     f"{r['gemm_gflops']:.0f} GFLOP/s | {r['bound_img_s']:,.0f} | {r['vaekit_of_bound']:.0%} | "
                     f"{r['vaekit_of_peak']:.0%} |")
    (out / f"vs-pythae-{args.data}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
