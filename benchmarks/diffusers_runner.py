"""One side of benchmarks/vs_diffusers.py in a fresh process: time training steps of diffusers' AutoencoderKL
(``--lib diffusers``, run with the diffusers environment's python) or of vaekit's autoencoder-kl (``--lib vaekit``),
or the same convolutions alone (``--lib conv``, vaekit's environment); prints one JSON line.

Both step the same way: Adam (betas 0.5, 0.9) on the L1 reconstruction summed over pixels plus 1e-6 x the KL
summed over the latent map, both averaged over the batch, z drawn from the posterior. Each side's Adam is the one
its training code builds: torch's as it comes for diffusers (its examples), the fused kernel for vaekit (its
trainer's make_optimizers). vaekit's side is its own model and objective (the laplace likelihood with a fixed scale 1 is the L1 loss plus a constant), without the
recipe's PatchGAN discriminator, which diffusers' AutoencoderKL does not have (vaekit runs it only from its
``disc_start`` step on)."""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F

BETA = 1e-6


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def diffusers_step(args):
    from diffusers import AutoencoderKL

    model = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=tuple(args.widths),
                          down_block_types=("DownEncoderBlock2D",) * len(args.widths),
                          up_block_types=("UpDecoderBlock2D",) * len(args.widths), layers_per_block=args.blocks,
                          latent_channels=args.latent_channels, norm_num_groups=32, sample_size=args.size)
    params = sum(p.numel() for p in model.parameters())
    # what diffusers' training examples do: torch's Adam as it comes (the per-tensor loop on the CPU)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def loss(x):
        posterior = model.encode(x).latent_dist
        recon = model.decode(posterior.sample()).sample
        return ((x - recon).abs().sum() + BETA * posterior.kl().sum()) / x.shape[0]
    return model, params, loss, optimizer


def vaekit_step(args):
    from vaekit.app.options import apply_options, base_config
    from vaekit.models import build_model
    from vaekit.objectives import build_objective
    from vaekit.train.optimizers import make_optimizers

    cfg = apply_options(base_config("autoencoder-kl-small"), {
        "widths": args.widths, "blocks": args.blocks, "latent_channels": args.latent_channels,
        "downsample": 2 ** (len(args.widths) - 1)}, ["model.likelihood.args.scale=1.0", "model.discriminator.name=none"])
    cfg.model.data_shape = [3, args.size, args.size]
    model = build_model(cfg.model, name=cfg.model.variant)
    objective = build_objective(cfg)
    params = sum(p.numel() for p in model.encoder.parameters()) + sum(p.numel() for p in model.decoder.parameters())
    optimizer, = make_optimizers(model.parameter_groups(), cfg.train).values()  # as vaekit's trainer builds it
    return model, params, lambda x: objective(model, x, None).loss, optimizer


def time_steps(args) -> dict:
    torch.manual_seed(0)
    model, params, loss, optimizer = (diffusers_step if args.lib == "diffusers" else vaekit_step)(args)
    model.train()
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)  # in place: the optimizer's parameters are the model's
    x = torch.rand(args.batch, 3, args.size, args.size).contiguous(memory_format=fmt)
    before, seconds = rss_mb(), []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss(x).backward()
        optimizer.step()
        if i >= args.warmup:
            seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step = statistics.median(seconds)
    return {"params": params, "step_seconds": seconds, "img_per_s": args.batch / step, "peak_rss_mb": peak,
            "step_peak_mb": peak - before}


def conv_bound(args) -> dict:
    """The seconds of every convolution of vaekit's step (shapes recorded from one forward pass), each timed
    alone, forward plus backward (input and weight gradients), in NCHW and in channels-last."""
    from torch import nn

    model, _, loss, _ = vaekit_step(args)
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append((tuple(i[0].shape), m)))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    loss(torch.rand(args.batch, 3, args.size, args.size))
    for h in hooks:
        h.remove()
    result = {}
    for name, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        convs = []
        for shape, m in shapes:
            x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_(True)
            w = m.weight.detach().clone().contiguous(memory_format=fmt).requires_grad_(True)
            b = m.bias.detach().clone().requires_grad_(True)
            convs.append((x, w, b, m.stride, m.padding))
        seconds = []
        for i in range(args.warmup + args.steps):
            start = time.perf_counter()
            for x, w, b, stride, padding in convs:
                y = F.conv2d(x, w, b, stride, padding)
                x.grad = w.grad = b.grad = None
                y.backward(torch.ones_like(y))
            if i >= args.warmup:
                seconds.append(time.perf_counter() - start)
        result[name] = {"step_seconds": seconds, "img_per_s": args.batch / statistics.median(seconds)}
    best = max(result, key=lambda k: result[k]["img_per_s"])
    return {**result, "best": best, "img_per_s": result[best]["img_per_s"], "convolutions": len(shapes)}


STEP_OPTIONS = ("widths", "blocks", "latent_channels", "batch", "threads", "warmup", "steps")


def add_step_options(p: argparse.ArgumentParser) -> None:
    """The architecture and timing options both sides take (vs_diffusers.py passes them on)."""
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--latent-channels", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--lib", choices=["vaekit", "diffusers", "conv"], required=True)
    p.add_argument("--size", type=int, default=64)
    add_step_options(p)
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(conv_bound(args) if args.lib == "conv" else time_steps(args)))


if __name__ == "__main__":
    main()
