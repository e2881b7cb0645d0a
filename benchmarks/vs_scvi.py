"""vaekit's scvi recipe and scvi-tools' SCVI side by side on count data: model quality and training speed.

    .venv/bin/python benchmarks/vs_scvi.py --scvi-python /tmp/scvi-venv/bin/python

scvi-tools lives in its own environment (``python3 -m venv /tmp/scvi-venv && /tmp/scvi-venv/bin/pip install
torch==2.13.0 scvi-tools``: it resolves to the CPU torch 2.13.0, no CUDA wheels). Two datasets of cells with known
cell types and two batches:

- ``zinb``: our ZINB generative model (:func:`synthetic`): 3 cell types, each with its own up-regulated marker
  genes, 2 batches, the batch effect a per-batch, per-gene scaling of the expression, log-normal library sizes;
- ``synthetic_iid``: scvi-tools' ``scvi.data.synthetic_iid`` (3 labels, 2 batches).

Both tools train on the same 80% of the cells (vaekit's stratified test split) with the same architecture and
epochs (benchmarks/scvi_runner.py), fresh processes, ``--threads`` each, interleaved, one seed per repeat. On the
held-out 20%: reconstruction log-likelihood and ELBO per cell (nats, higher is better), the kNN (k = 15)
cell-type accuracy of the latent means (fit on the training cells), and the entropy of batch mixing (Haghverdi
et al. 2018, Methods: the mean over 100 draws of 100 cells of the entropy of the batch frequencies among each
cell's 50 nearest neighbours; log 2 = 0.693 is perfect mixing of two equal batches). Speed: training cells per
second over the median epoch after the first, each tool timing its own epochs; the ratio is vaekit over
scvi-tools. The machine's load average is recorded beside each run.

Writes benchmarks/results/vs-scvi.{json,md} and, with ``--png``, the latent maps of one run by cell type and by
batch for both tools.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench_common import HERE, command_line, write

RUNNER = str(HERE / "scvi_runner.py")


def synthetic(path: Path, cells: int, genes: int, seed: int = 0) -> None:
    """ZINB counts (Lopez et al. 2018's generative model, with cell types and batches known):
    rho = softmax(type profile + log batch scaling), x ~ ZINB(l rho, theta_g, pi_g), l ~ LogNormal."""
    rng = np.random.default_rng(seed)
    types, batches = rng.integers(0, 3, cells), rng.integers(0, 2, cells)
    profile = np.tile(rng.normal(0.0, 1.0, genes), (3, 1))
    markers = rng.permutation(genes)[:60].reshape(3, 20)
    for t in range(3):
        profile[t, markers[t]] += 2.0                          # 20 up-regulated marker genes per type
    batch_scale = rng.normal(0.0, 0.5, (2, genes))              # log of the per-batch, per-gene scaling
    logits = profile[types] + batch_scale[batches]
    rho = np.exp(logits - logits.max(1, keepdims=True))
    rho /= rho.sum(1, keepdims=True)
    library = rng.lognormal(np.log(1500.0), 0.3, (cells, 1))
    theta = rng.lognormal(np.log(5.0), 0.5, genes)
    mu = library * rho
    counts = rng.poisson(rng.gamma(theta, mu / theta))          # NB as a gamma-Poisson mixture
    counts[rng.random(counts.shape) < rng.uniform(0.05, 0.3, genes)] = 0   # structural zeros, pi_g
    np.savez(path, x=counts.astype(np.float32), y=types, batch=batches)


def knn_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray, k: int = 15) -> float:
    """Share of held-out cells whose majority cell type among their k nearest training cells is their own."""
    d = torch.cdist(torch.from_numpy(test), torch.from_numpy(train))
    near = train_y[d.topk(k, largest=False).indices.numpy()]
    votes = np.stack([(near == c).sum(1) for c in range(int(train_y.max()) + 1)], 1)
    return float((votes.argmax(1) == test_y).mean())


def batch_entropy(z: np.ndarray, batch: np.ndarray, k: int = 50, cells: int = 100, draws: int = 100,
                  seed: int = 0) -> float:
    """Entropy of batch mixing (Haghverdi et al. 2018): -sum_b p_b log p_b of the batch frequencies p among
    each cell's k nearest neighbours, averaged over ``cells`` random cells, and over ``draws`` draws."""
    rng = np.random.default_rng(seed)
    d = torch.cdist(torch.from_numpy(z), torch.from_numpy(z))
    d.fill_diagonal_(float("inf"))
    near = batch[d.topk(k, largest=False).indices.numpy()]
    p = np.stack([(near == b).mean(1) for b in np.unique(batch)], 1)
    h = -(p * np.log(np.where(p > 0, p, 1.0))).sum(1)
    return float(np.mean([h[rng.choice(len(z), cells, replace=False)].mean() for _ in range(draws)]))


def run(cmd: list, env) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scvi-python", required=True, help="The python of the environment scvi-tools is in.")
    p.add_argument("--cells", type=int, default=2500)
    p.add_argument("--genes", type=int, default=200)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--png", default=None, help="Also draw the latent maps of the first run here.")
    p.add_argument("--note", default="", help="Said with the table (e.g. that the machine was shared).")
    args = p.parse_args()
    from vaekit.data.splits import TEST_FRACTION, TEST_SEED, split_indices

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONWARNINGS="ignore")
    work = Path(tempfile.mkdtemp(prefix="vs-scvi-"))
    data = {"zinb": work / "zinb.npz", "synthetic_iid": work / "iid.npz"}
    synthetic(data["zinb"], args.cells, args.genes)
    run([args.scvi_python, RUNNER, "--make-iid", str(data["synthetic_iid"]), "--cells", str(args.cells),
         "--genes", str(args.genes)], env)
    pythons = {"vaekit": sys.executable, "scvi-tools": args.scvi_python}
    rows, first = {}, {}
    for name, path in data.items():
        d = np.load(path)
        y, batch = d["y"], d["batch"]
        train = split_indices(len(y), TEST_FRACTION, TEST_SEED, torch.from_numpy(y))[0].numpy()
        test = np.setdiff1d(np.arange(len(y)), train)
        np.save(work / f"{name}-train.npy", train)
        for rep in range(args.repeats):
            order = list(pythons) if rep % 2 == 0 else list(pythons)[::-1]
            for tool in order:
                out = work / f"{name}-{tool}-{rep}.npz"
                cmd = [pythons[tool], RUNNER, "--side", "scvi" if tool == "scvi-tools" else "vaekit",
                       "--data", str(path), "--train-index", str(work / f"{name}-train.npy"),
                       "--epochs", str(args.epochs), "--warmup", str(args.warmup), "--seed", str(rep),
                       "--threads", str(args.threads), "--work", str(work / f"{tool}-{rep}"), "--out", str(out)]
                (work / f"{tool}-{rep}").mkdir(exist_ok=True)
                load = os.getloadavg()[0]
                result = run(cmd, env)
                z = np.load(out)["latent"]
                seconds = result["epoch_seconds"][1:] or result["epoch_seconds"]
                result.update(load_before=load, load_after=os.getloadavg()[0],
                              cells_per_s=len(train) / statistics.median(seconds),
                              knn_accuracy=knn_accuracy(z[train], y[train], z[test], y[test]),
                              batch_entropy=batch_entropy(z[test], batch[test], seed=rep))
                result.pop("epoch_seconds")
                rows.setdefault(name, {}).setdefault(tool, []).append(result)
                first.setdefault((name, tool), (z[test], y[test], batch[test]))
                print(json.dumps({"data": name, "tool": tool, "repeat": rep, **result}), flush=True)
    write_report(args, rows, len(train))
    if args.png:
        draw(first, args.png)


NOTE_ELBO = ("Both sides are scored by the same function (scvi_runner.scores) with the observed library size, and "
             "the two ZINB log-probabilities agree to 5e-5 nats per cell; the ELBO gap is where the per-gene "
             "log-dispersion starts (scvi-tools: N(0, 1) draws, vaekit: 0), which Adam with eps 0.01 moves little "
             "in 60 epochs: scvi_runner.py --side scvi --dispersion-init zeros on zinb (seeds 0, 1) reaches recon "
             "-434.37 / -434.30 and ELBO -438.84 / -438.30, vaekit's numbers (README, 'The scvi recipe next to "
             "scvi-tools').")
KEYS = ("recon_ll", "elbo", "knn_accuracy", "batch_entropy", "cells_per_s")


def write_report(args, rows: dict, n_train: int) -> None:
    def cell(values) -> str:
        mean = statistics.mean(values)
        return f"{mean:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:.3f}"

    lines = [f"vaekit's scvi recipe vs scvi-tools {args.epochs} epochs (KL warm-up {args.warmup}), {args.cells} cells "
             f"x {args.genes} genes, {n_train} training cells, {args.threads} thread(s) each, mean ± sd over "
             f"{args.repeats} seeds. {args.note}", "",
             "| data | tool | recon log-lik / cell | ELBO / cell | kNN acc | batch entropy | cells/s | load |",
             "|---|---|---|---|---|---|---|---|"]
    summary = {}
    for name, tools in rows.items():
        for tool, results in tools.items():
            loads = [r["load_before"] for r in results]
            lines.append(f"| {name} | {tool} | " + " | ".join(cell([r[k] for r in results]) for k in KEYS)
                         + f" | {min(loads):.1f}-{max(loads):.1f} |")
        speed = [statistics.median([r["cells_per_s"] for r in tools[t]]) for t in ("vaekit", "scvi-tools")]
        summary[name] = {"speed_ratio": speed[0] / speed[1]}
        lines.append(f"| {name} | **ratio** | | | | | **{speed[0] / speed[1]:.2f}x** | |")
    spelled = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "note"})
    command = (command_line("vs_scvi.py", spelled, "scvi_python").replace("PYTHAE_PYTHON", "SCVI_PYTHON")
               + (f" --note {shlex.quote(args.note)}" if args.note else ""))
    lines += ["", f"Command: `{command}`",
              "", "scvi-tools' model holds 52,298 more parameters (134,838 against 82,540) that compute nothing here: its "
              "library-size encoder (unused with the observed library size) and its per-cell dispersion head (unused "
              "with dispersion='gene'). synthetic_iid's labels are drawn independently of its counts: a kNN accuracy "
              "near 1/3 is what any model gets.", "", NOTE_ELBO]
    write("vs-scvi", {"command": command, "runs": rows, "summary": summary}, lines)


def draw(first: dict, png: str) -> None:
    """The latent maps (PCA of the held-out cells' latent means) by cell type and by batch, both tools."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in first if k[0] == "zinb"]
    fig, axes = plt.subplots(len(keys), 2, figsize=(8, 4 * len(keys)), squeeze=False)
    for row, key in zip(axes, keys):
        z, y, batch = first[key]
        z = z - z.mean(0)
        xy = z @ np.linalg.svd(z, full_matrices=False)[2][:2].T
        for ax, colour, what in ((row[0], y, "cell type"), (row[1], batch, "batch")):
            ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=4, cmap="viridis" if what == "cell type" else "coolwarm")
            ax.set_title(f"{key[1]} on {key[0]}: by {what}")
            ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
