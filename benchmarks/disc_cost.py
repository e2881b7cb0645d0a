"""What the PatchGAN discriminator costs per training step of autoencoder-kl-small (issue 19, sec. 6).

One model of the ``autoencoder-kl-small`` recipe (LDM's discriminator: 3 layers, width 64, BatchNorm,
hinge) and one batch of random images; a training step is the objective plus every optimizer's step
(train/optimizers.py ``step_all``), as the trainer runs it. "off" is a step before ``disc_start`` (the
discriminator is not run), "on" a step after it (two discriminator passes, the adaptive weight's
gradients, the discriminator's own backward and Adam step). The two alternate in blocks, the order
swapped each round; the report gives the medians and their ratio (target: at most about 1.5x).

    python benchmarks/disc_cost.py --size 64 --batch 8 --rounds 8 --steps 3
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench_common import command_line, write
from vaekit.app.options import apply_options, base_config
from vaekit.models import build_model
from vaekit.objectives import build_objective
from vaekit.train.distributed import Dist
from vaekit.train.optimizers import make_optimizers, step_all
from vaekit.train.watch import NonFiniteWatch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=8, help="blocks of each kind, alternating")
    p.add_argument("--steps", type=int, default=3, help="timed steps per block (after one untimed)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--note", default="", help="how busy the machine was")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = apply_options(base_config("autoencoder-kl-small"), {"disc_start": 1})
    cfg.model.data_shape = [3, args.size, args.size]
    model = build_model(cfg.model)
    objective = build_objective(cfg)
    optimizers = make_optimizers(model.parameter_groups(), cfg.train)
    x = torch.rand(args.batch, 3, args.size, args.size)
    watch, dist = NonFiniteWatch(), Dist()

    def block(on: bool) -> list:
        times = []
        for i in range(args.steps + 1):
            start = time.perf_counter()
            out = objective(model, x, step=1 if on else 0)
            step_all(optimizers, out.losses, watch=watch, dist=dist, step=1)
            if i:  # the first step of a block warms the allocator up for its kind
                times.append(time.perf_counter() - start)
        return times

    seconds = {"off": [], "on": []}
    for r in range(args.rounds):
        for kind in (("off", "on") if r % 2 == 0 else ("on", "off")):
            seconds[kind] += block(kind == "on")
    med = {k: statistics.median(v) for k, v in seconds.items()}
    ratio = med["on"] / med["off"]
    spelled = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "note"})
    report = {"command": command_line("disc_cost.py", spelled), "note": args.note,
              "parameters": {"autoencoder": sum(p.numel() for p in model.parameters()) - sum(
                  p.numel() for p in model.adversary.parameters()),
                  "discriminator": sum(p.numel() for p in model.adversary.parameters())},
              "median_step_seconds": med, "ratio_on_off": ratio, "steps_timed": {k: len(v) for k, v in seconds.items()}}
    lines = [f"# The discriminator's cost per step: autoencoder-kl-small, {args.size} px, batch {args.batch}",
             "", f"`{report['command']}`" + (f" ({args.note})" if args.note else ""), "",
             "| step | median s | img/s |", "|---|---|---|",
             *(f"| discriminator {k} | {med[k]:.4f} | {args.batch / med[k]:.1f} |" for k in ("off", "on")),
             "", f"ratio on / off: {ratio:.2f}x"]
    write(f"disc-cost-{args.size}px", report, lines)


if __name__ == "__main__":
    main()
