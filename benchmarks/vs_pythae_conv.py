"""The conv part of benchmarks/vs_pythae.py: pythae's MNIST benchmark conv VAE trained by pythae
and, as the user's own modules, by vaekit (also with channels_last), and vaekit's ``conv`` recipe.

Conv nets are slow on a few CPU cores, so each run trains a capped epoch: the first
``steps x batch`` training images, no validation pass, 2 epochs (the first warms up, the second
is timed). Each throughput is also shown as a fraction of two bounds: the fp32 2048^3 matrix
product rate and the net's own conv/linear layers timed one at a time (benchmarks/flops.py),
each over the net's training FLOPs per image (3x the forward's).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from bench_common import PYTHAE_RUNNER, VAEKIT_RUNNER, interleaved, median, throughput, write
from flops import forward_flops, layers_rate
from pythae_conv_net import PYTHAE_PARAMETERS_AT_LATENT_16, PythaeConvDecoder, PythaeConvEncoder

LATENT = 16  # pythae's benchmark net is quoted at latent 16 (17.2M parameters)


def vaekit_model(recipe=None, networks=None):
    """The model ``vaekit.train`` would build on (1, 28, 28) images, for counting and timing layers."""
    from vaekit.app.options import base_config
    from vaekit.models import build_model

    cfg = base_config(recipe)
    cfg.model.data_shape, cfg.model.likelihood.name = [1, 28, 28], "bernoulli"
    if networks:
        cfg.model.latent_dim = LATENT
    torch.manual_seed(0)
    return build_model(cfg.model, *(networks or (None, None))).train()


def bounds(model, batch: int, gemm_peak: float) -> dict:
    """Training FLOPs per image, the net's own layers' rate, and the img/s each bound allows."""
    x = torch.rand(batch, 1, 28, 28)
    per_image = 3 * forward_flops(lambda: model(x)) / batch
    layers = layers_rate(model, lambda: model(x))
    return {"flop_per_image": per_image, "parameters": sum(p.numel() for p in model.parameters()),
            "layers_gflops": layers["gflops"], "layers_bound_img_s": layers["gflops"] * 1e9 / per_image,
            "peak_bound_img_s": gemm_peak * 1e9 / per_image}


def conv_part(args, data, tmp: Path, env, gemm_peak: float, command: str) -> None:
    n_net, n_recipe = args.conv_steps * args.conv_batch, args.recipe_steps * args.recipe_batch
    files = {}
    for name, n in (("net", n_net), ("recipe", n_recipe)):
        files[name] = tmp / f"conv-{name}.npz"  # vaekit reads x/x_test, pythae x_train/x_val/x_test
        x = data.train.x[:n].numpy()
        np.savez(files[name], x=x, x_train=x, x_val=data.val.x[:100].numpy(), x_test=data.test.x[:100].numpy())
    ours = [VAEKIT_RUNNER, "--data", str(files["net"]), "--out", str(tmp / "conv-run"), "--epochs", "2",
            "--batch-size", str(args.conv_batch), "--latent", str(LATENT), "--val-fraction", "0"]
    jobs = [("pythae", [args.pythae_python, PYTHAE_RUNNER, "--npz", str(files["net"]), "--net", "conv",
                        "--epochs", "2", "--batch-size", str(args.conv_batch), "--latent", str(LATENT),
                        "--lr", "1e-3", "--train-n", str(n_net), "--no-eval"]),
            ("vaekit", [sys.executable, *ours, "--net", "pythae-conv"]),
            ("vaekit_channels_last", [sys.executable, *ours, "--net", "pythae-conv-channels-last"]),
            ("recipe", [sys.executable, VAEKIT_RUNNER, "--data", str(files["recipe"]), "--out", str(tmp / "recipe-run"),
                        "--recipe", "conv", "--epochs", "2", "--batch-size", str(args.recipe_batch),
                        "--val-fraction", "0"])]
    if not args.conv_channels_last:
        jobs = [job for job in jobs if job[0] != "vaekit_channels_last"]
    runs = interleaved(jobs, args.repeats, env, {"part": "conv"})
    counts = {name: {r["parameters"] for r in rs} for name, rs in runs.items()}
    assert counts["pythae"] == counts["vaekit"] == {PYTHAE_PARAMETERS_AT_LATENT_16}, counts
    net = bounds(vaekit_model(networks=(PythaeConvEncoder(), PythaeConvDecoder(LATENT))), args.conv_batch, gemm_peak)
    assert net["parameters"] == PYTHAE_PARAMETERS_AT_LATENT_16, net
    recipe = bounds(vaekit_model("conv"), args.recipe_batch, gemm_peak)
    speed = {name: median(throughput(r, n_recipe if name == "recipe" else n_net) for r in rs)
             for name, rs in runs.items()}
    rows = []
    for name, what, bound in (("pythae", "pythae", net), ("vaekit", "vaekit", net),
                              ("vaekit_channels_last", "vaekit, channels_last", net), ("recipe", "vaekit", recipe)):
        if name not in speed:
            continue
        figure = (f"vaekit's `conv` recipe (batch {args.recipe_batch}, {args.recipe_steps} steps)" if name == "recipe"
                  else f"pythae's MNIST benchmark conv VAE, 17.2M parameters (batch {args.conv_batch}, "
                       f"{args.conv_steps} steps)")
        rows.append({"figure": figure, "library": what, "img_s": speed[name],
                     "vs_pythae": None if name == "recipe" else speed[name] / speed["pythae"],
                     "of_layers_bound": speed[name] / bound["layers_bound_img_s"],
                     "of_peak_bound": speed[name] / bound["peak_bound_img_s"], **bound})
    lines = [f"`{command}`", "",
             f"Conv training, capped epochs: each run trains 2 epochs of the first steps x batch training images "
             f"(no validation pass) and the second epoch is timed; fresh processes, order rotated, "
             f"{args.repeats} repeats, medians. fp32 matrix product: {gemm_peak:.0f} GFLOP/s at 2048^3.", "",
             "| figure | library | img/s | / pythae | training MFLOP per image | its layers alone (GFLOP/s) "
             "| of the layers' bound | of the 2048^3 GEMM bound |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r["vs_pythae"] is None else f"{r['vs_pythae']:.2f}x"
        lines.append(f"| {r['figure']} | {r['library']} | {r['img_s']:,.1f} | {ratio} | {r['flop_per_image'] / 1e6:,.1f} "
                     f"| {r['layers_gflops']:.0f} | {r['of_layers_bound']:.0%} | {r['of_peak_bound']:.0%} |")
    write(f"vs-pythae-conv-{args.data}", {"command": command, "rows": rows, "gemm_2048_gflops": gemm_peak,
                                          "runs": runs}, lines)
