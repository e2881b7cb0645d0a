"""vaekit's autoencoder-kl and diffusers' AutoencoderKL side by side: a full training step on CPU at equal architecture.

    .venv/bin/python benchmarks/vs_diffusers.py --diffusers-python /tmp/diffusers-venv/bin/python

diffusers lives in its own environment (``python3 -m venv /tmp/diffusers-venv && /tmp/diffusers-venv/bin/pip
install -c constraints.txt torch==2.13.0 diffusers``, the CPU torch of constraints.txt); both sides are
benchmarks/diffusers_runner.py, each a fresh process. Both build widths ``--widths`` (32, 64, 128), ``--blocks``
(2) residual blocks per level, attention in the middle block, a latent map of ``--latent-channels`` (4) at
f = 2 ** (levels - 1), GroupNorm of 32 groups; the parameter counts are printed and must be equal. Each job times
``--steps`` steps (forward, backward, Adam) of batch ``--batch`` after ``--warmup``, at each ``--sizes`` px with
``--threads`` threads, the jobs interleaved ``--repeats`` times; the table shows the medians, img/s, the peak
RSS of the process and its rise during the steps, and the bound the same convolutions set when timed alone
(forward + backward, in their better memory format: NCHW or channels-last).

Writes benchmarks/results/vs-diffusers.{json,md} with the exact command.
"""
from __future__ import annotations

import argparse
import os
import shlex

from bench_common import HERE, command_line, interleaved, median, write
from diffusers_runner import STEP_OPTIONS, add_step_options

RUNNER = str(HERE / "diffusers_runner.py")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--diffusers-python", required=True, help="The python of the environment diffusers is in.")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    add_step_options(p)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--note", default="", help="Said with the table (e.g. that the machine was shared).")
    args = p.parse_args()
    import sys

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1")
    spelled = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "note"})
    command = command_line("vs_diffusers.py", spelled, "diffusers_python").replace("PYTHAE_PYTHON", "DIFFUSERS_PYTHON")
    command += f" --note {shlex.quote(args.note)}" if args.note else ""
    rows, report = [], {"command": command, "sizes": {}}
    for size in args.sizes:
        common = ["--size", str(size)]
        for name in STEP_OPTIONS:
            value = getattr(args, name)
            common += ["--" + name.replace("_", "-"), *map(str, value if isinstance(value, list) else [value])]
        jobs = [("vaekit", [sys.executable, RUNNER, "--lib", "vaekit", *common]),
                ("diffusers", [args.diffusers_python, RUNNER, "--lib", "diffusers", *common]),
                ("conv", [sys.executable, RUNNER, "--lib", "conv", *common])]
        results = interleaved(jobs, args.repeats, env, {"size": size})
        params = {lib: results[lib][0]["params"] for lib in ("vaekit", "diffusers")}
        if params["vaekit"] != params["diffusers"]:
            raise SystemExit(f"unequal architectures at {size} px: parameters {params}")
        ours, theirs = (median(r["img_per_s"] for r in results[lib]) for lib in ("vaekit", "diffusers"))
        bound = median(r["img_per_s"] for r in results["conv"])
        peak = {lib: median(r["peak_rss_mb"] for r in results[lib]) for lib in ("vaekit", "diffusers")}
        rise = {lib: median(r["step_peak_mb"] for r in results[lib]) for lib in ("vaekit", "diffusers")}
        best = max(set(r["best"] for r in results["conv"]), key=[r["best"] for r in results["conv"]].count)
        report["sizes"][str(size)] = {"params": params, "vaekit_img_per_s": ours, "diffusers_img_per_s": theirs,
                                      "ratio": ours / theirs, "conv_bound_img_per_s": bound, "conv_format": best,
                                      "bound_ratio": bound / theirs, "of_bound": ours / bound,
                                      "peak_rss_mb": peak, "step_peak_mb": rise, "runs": results}
        rows.append(f"| {size} | {params['vaekit']:,} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f}x | "
                    f"{bound:.2f} ({best}) | {bound / theirs:.2f}x | {ours / bound:.0%} | "
                    f"{peak['vaekit']:.0f} / {peak['diffusers']:.0f} | "
                    f"{rise['vaekit']:.0f} / {rise['diffusers']:.0f} |")
    lines = ["# vaekit autoencoder-kl vs diffusers AutoencoderKL: one training step on CPU", "",
             f"widths {args.widths}, {args.blocks} blocks per level, attention in the middle block, "
             f"{args.latent_channels} latent channels, batch {args.batch}, {args.threads} threads; medians of "
             f"{args.repeats} interleaved runs of {args.steps} steps. {args.note}".rstrip(), "",
             "| px | parameters (each) | vaekit img/s | diffusers img/s | vaekit / diffusers | conv bound img/s "
             "| bound / diffusers | vaekit of bound | peak RSS MB vaekit / diffusers | rise in steps MB |",
             "|---|---|---|---|---|---|---|---|---|---|", *rows, "", f"`{report['command']}`"]
    report["note"] = args.note
    write("vs-diffusers", report, lines)


if __name__ == "__main__":
    main()
