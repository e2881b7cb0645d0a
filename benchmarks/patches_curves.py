"""Short learning curves behind benchmarks/patches_psnr.py: why a network reconstructs held-out photos worse.

    .venv/bin/python benchmarks/patches_curves.py resnet-small --steps 300 --set model.network.args.norm_groups=32

Trains one network of patches_psnr.py (the same options: latent 128, the Gaussian's optimal sigma, Adam) for
``--steps`` steps of ``--batch-size`` and prints, every ``--every`` steps, on 512 test crops (held-out photos)
and 512 validation crops (training photos): the squared error, its part from each crop's mean colour (``dc``:
the squared error of the per-crop channel means; the rest is the error of the pattern around them), the mean
PSNR, the KL in nats and the active units (Burda et al. 2016: the variance of a unit's posterior mean above
0.01). ``--zero`` starts what it names at zero: ``blocks`` (the last conv of every residual block, as Goyal et
al. 2017 zero their last BatchNorm's scale) or ``output`` (the decoder's output conv).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from patches_psnr import COMMON, NETWORKS  # noqa: E402
from vaekit.app.api import _fill_from_data  # noqa: E402
from vaekit.app.options import apply_options, base_config  # noqa: E402
from vaekit.data import load_data  # noqa: E402
from vaekit.evaluate.recon import psnr  # noqa: E402
from vaekit.models import build_model  # noqa: E402
from vaekit.nn.blocks import ResnetBlock  # noqa: E402
from vaekit.objectives import build_objective  # noqa: E402


def build(name: str, data: str, options: dict, sets):
    options = {**COMMON, **NETWORKS[name], **options, "data": data}
    cfg = apply_options(base_config(options.pop("recipe", None)), options, sets)
    splits = load_data(cfg.data.source, val_fraction=cfg.data.val_fraction, seed=cfg.train.seed)
    _fill_from_data(cfg, splits.info)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model)
    return splits, model, build_objective(cfg, len(splits.train))


def zero(model: nn.Module, what: str) -> None:
    convs = ([m.conv2 for m in model.modules() if isinstance(m, ResnetBlock)] if what == "blocks"
             else [model.decoder.conv_out])
    for conv in convs:
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)


@torch.no_grad()
def measure(model, x: torch.Tensor) -> dict:
    model.eval()
    q = model.encode(x)
    x_hat = model.decoder(q.mean)
    var = q.variance
    kl = 0.5 * (q.mean.pow(2) + var - 1 - var.log()).sum(1).mean()  # KL(N(mu, var) || N(0, I)): Kingma & Welling
    model.train()                                                    # 2014, app. B
    return {"mse": float((x_hat - x).pow(2).mean()), "dc": float((x_hat - x).mean((2, 3)).pow(2).mean()),
            "psnr": float(psnr(x, x_hat.clamp(0, 1)).mean()), "kl": float(kl),
            "active": int((q.mean.var(0) > 0.01).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", choices=[n for n in NETWORKS])
    parser.add_argument("--data", default="patches-32")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zero", choices=["blocks", "output"])
    parser.add_argument("--set", action="append", default=[], help="as vaekit's --set, e.g. "
                        "model.network.args.norm_groups=8")
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits, model, objective = build(args.network, args.data, {"batch_size": args.batch_size, "lr": args.lr,
                                                               "seed": args.seed, "sigma": "optimal"}, args.set)
    if args.zero:
        zero(model, args.zero)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    test, val, train = splits.test.x[:512], splits.val.x[:512], splits.train.x
    order = torch.Generator().manual_seed(args.seed)
    step, losses, start = 0, [], time.process_time()

    def report() -> None:
        row = {"step": step, "train_loss": round(sum(losses) / max(len(losses), 1), 1)}
        for name, x in (("test", test), ("val", val)):
            row.update({f"{name}_{k}": round(v, 5 if k in ("mse", "dc") else 2) for k, v in measure(model, x).items()})
        print(json.dumps({**row, "cpu_s": round(time.process_time() - start)}), flush=True)
        losses.clear()

    report()
    while step < args.steps:
        for batch in torch.randperm(len(train), generator=order).split(args.batch_size):
            out = objective(model, train[batch], None, kl_weight=1.0)
            optimizer.zero_grad(set_to_none=True)
            out.losses["main"].backward()
            optimizer.step()
            losses.append(float(out.losses["main"].detach()))
            step += 1
            if step % args.every == 0 or step == args.steps:
                report()
            if step == args.steps:
                break


if __name__ == "__main__":
    main()
