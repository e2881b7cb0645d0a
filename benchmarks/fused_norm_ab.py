"""Paired A/B in one process: vaekit's autoencoder-kl training step with torch's GroupNorm + SiLU (A) and with
the fused Function of vaekit/nn/norm_act.py (B), the two models' steps alternating on the same batch.

    .venv/bin/python benchmarks/fused_norm_ab.py --size 64 --threads 1 --pairs 8

The step is benchmarks/diffusers_runner.py's (forward, backward, fused Adam; widths 32, 64, 128, 2 blocks, 4 latent
channels, batch 16). Reports each side's median wall and CPU seconds per step and the per-pair ratio B / A; CPU
time (time.process_time) is the steadier measure on a shared machine with one thread."""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import vaekit.nn.norm_act as norm_act
from diffusers_runner import vaekit_step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pairs", type=int, default=8)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    args = argparse.Namespace(widths=[32, 64, 128], blocks=2, latent_channels=4, size=a.size, batch=16)
    fused, plain = norm_act.fusable, (lambda x, norm: False)
    x = torch.rand(args.batch, 3, a.size, a.size)
    sides = {}
    for name in ("A", "B"):
        torch.manual_seed(0)
        sides[name] = vaekit_step(args)

    def step(name):
        _, _, loss, optimizer = sides[name]
        norm_act.fusable = fused if name == "B" else plain
        wall, cpu = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        loss(x).backward()
        optimizer.step()
        return time.perf_counter() - wall, time.process_time() - cpu

    for name in sides:
        step(name)
    seconds = {name: [] for name in sides}
    for i in range(a.pairs):
        for name in ("A", "B") if i % 2 == 0 else ("B", "A"):
            seconds[name].append(step(name))
        print(i, {n: tuple(round(v, 3) for v in seconds[n][-1]) for n in sides}, flush=True)
    for k, what in enumerate(("wall", "CPU")):
        med = {n: statistics.median(s[k] for s in seconds[n]) for n in sides}
        ratios = [b[k] / a_[k] for a_, b in zip(seconds["A"], seconds["B"])]
        print(f"{what}: median s/step A {med['A']:.3f}, B {med['B']:.3f}; B / A per pair: median "
              f"{statistics.median(ratios):.3f}, B faster in {sum(r < 1 for r in ratios)} of {len(ratios)}")


if __name__ == "__main__":
    main()
