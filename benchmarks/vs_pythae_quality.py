"""The quality part of benchmarks/vs_pythae.py: each library's default MLP VAE trained for the same
number of seconds, then its test ELBO (all test images) and importance-sampled NLL (the first
``--quality-nll-n`` test images, k = ``--nll-k``), each computed by the library's own code.

Defaults: vaekit's (``vaekit train`` without ``--recipe``: 784-512-16, Adam 1e-3, batch 128) and
pythae's default VAE networks and trainer (784-512-10, Adam 1e-4, batch 64), both with the
Bernoulli/BCE likelihood (pythae's default MSE has a Gaussian NLL that is not comparable). vaekit's
``mlp`` recipe (the classic 2-D latent) runs beside them for reference. Each positive value in
``--quality-latents`` (0 = each library's default) also runs both at that latent size. The budget
rule is the same on both sides: epochs run until the budget is spent, and the epoch that crosses it
is finished (the seconds actually used are reported); the clock starts at the library's training call.
"""
from __future__ import annotations

import sys
from pathlib import Path

from bench_common import PYTHAE_RUNNER, VAEKIT_RUNNER, interleaved, median, write

SETTINGS = {"pythae": "pythae's default VAE networks and trainer (Adam 1e-4, batch 64), BCE",
            "vaekit": "vaekit's defaults, no recipe (Adam 1e-3, batch 128)",
            "vaekit-mlp": "vaekit's `mlp` recipe, the classic 2-D latent (Adam 1e-3, batch 128)"}
KEYS = ("train_seconds", "epochs", "test_elbo", "nll")


def quality_jobs(args, npz: Path, tmp: Path) -> list:
    """(name, command) per run: ``library/latent`` with latent 0 meaning the library's default."""
    evaluate = ["--seconds", str(args.quality_seconds), "--evaluate", "--nll-n", str(args.quality_nll_n),
                "--nll-k", str(args.nll_k)]
    vaekit = [sys.executable, VAEKIT_RUNNER, "--data", args.data, "--out", str(tmp / "quality-run")]
    jobs = []
    for latent in args.quality_latents:
        size = [] if latent == 0 else ["--latent", str(latent)]
        jobs += [(f"vaekit/{latent}", [*vaekit, *size, *evaluate]),
                 (f"pythae/{latent}", [args.pythae_python, PYTHAE_RUNNER, "--npz", str(npz), "--net", "default",
                                       *size, *evaluate])]
        if latent == 0:
            jobs.append(("vaekit-mlp/0", [*vaekit, "--recipe", "mlp", *evaluate]))
    return jobs


def quality_part(args, npz: Path, tmp: Path, env, command: str) -> None:
    runs = interleaved(quality_jobs(args, npz, tmp), args.quality_repeats, env, {"part": "quality"})
    rows = []
    for name, rs in runs.items():
        library, latent = name.split("/")
        row = {key: median(r[key] for r in rs) for key in KEYS}
        rows.append({"setting": library, "requested_latent": int(latent), "library": library.split("-")[0],
                     "latent": rs[0]["latent"], **row})
    lines = [f"`{command}`", "",
             f"Quality at equal wall-clock: {args.quality_seconds:.0f} s of training each (epochs run until the "
             f"budget is spent; the crossing epoch is finished), then the test ELBO over all test images and the "
             f"importance-sampled NLL (k = {args.nll_k}) of the first {args.quality_nll_n}, each library's own "
             f"estimator; medians of {args.quality_repeats} run(s), fresh processes, order rotated.", "",
             "| setting | library | latent | seconds used | epochs | test ELBO (nats) | test NLL (nats) |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["requested_latent"], r["setting"])):
        size = "its default" if r["requested_latent"] == 0 else f"set to {r['requested_latent']} on both sides"
        lines.append(f"| {SETTINGS[r['setting']]}, latent {size} | {r['library']} | {r['latent']} | "
                     f"{r['train_seconds']:.0f} | {r['epochs']:.0f} | {r['test_elbo']:.2f} | {r['nll']:.2f} |")
    write(f"vs-pythae-quality-{args.data}", {"command": command, "rows": rows, "runs": runs}, lines)
