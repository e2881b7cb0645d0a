"""vaekit's side of benchmarks/vs_pythae.py and benchmarks/scaling.py: one training run in a fresh
process, through ``vaekit.train``, timed by vaekit's own per-epoch ``seconds`` (metrics.jsonl).

    python benchmarks/vaekit_runner.py --data fashion-mnist --out RUN --epochs 3 --batch-size 128 --hidden 512 --latent 16
    python benchmarks/vaekit_runner.py --data x.npz --out RUN --net pythae-conv --batch-size 100 --val-fraction 0
    python benchmarks/vaekit_runner.py --data fashion-mnist --out RUN --recipe mlp --seconds 120 --evaluate

``--net pythae-conv`` trains pythae's MNIST benchmark conv net (benchmarks/pythae_conv_net.py) as
the user's own encoder/decoder. ``--seconds`` stops at the end of the first epoch that ends past the
budget, counted from the ``vaekit.train`` call (the rule pythae_runner.py applies too).
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import vaekit
from vaekit import rundir
from vaekit.evaluate import evaluate_elbo, evaluate_log_likelihood
from vaekit.models.helpers import posterior_moments
from vaekit.train import trainer as trainer_module


def stop_after(seconds: float, start: float) -> None:
    """No epoch starts once ``seconds`` have passed since ``start``: the trainer's loop runs while
    its epoch count is below ``train.epochs``, so the budget lowers that count after the epoch
    that ends past it (vaekit has no time limit of its own; the checkpoint is written first)."""
    save = trainer_module.Trainer._save

    def save_then_check(self, row, improved):
        save(self, row, improved)
        if time.perf_counter() - start >= seconds:
            self.tc.epochs = self.epoch
    trainer_module.Trainer._save = save_then_check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a dataset name or an .npz path")
    parser.add_argument("--out", required=True, help="the run directory (replaced)")
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--net", choices=["recipe", "pythae-conv", "pythae-conv-channels-last"], default="recipe")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=None, help="train epochs until this budget is spent")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--latent", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--val-fraction", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate", action="store_true", help="time encoding, the test ELBO and the NLL")
    parser.add_argument("--nll-n", type=int, default=200)
    parser.add_argument("--nll-k", type=int, default=1000)
    args = parser.parse_args()
    options = dict(epochs=args.epochs, batch_size=args.batch_size, latent_dim=args.latent, lr=args.lr,
                   val_fraction=args.val_fraction, seed=args.seed)
    if args.hidden is not None:
        options["hidden"] = [args.hidden]
    networks = {}
    if args.net != "recipe":
        from pythae_conv_net import PythaeConvDecoder, PythaeConvEncoder

        channels_last = args.net.endswith("channels-last")
        networks = dict(encoder=PythaeConvEncoder(channels_last), decoder=PythaeConvDecoder(args.latent or 16, channels_last))
    start = time.perf_counter()
    if args.seconds is not None:
        stop_after(args.seconds, start)
        options["epochs"] = 10**6
    model = vaekit.train(args.data, recipe=args.recipe, out=args.out, overwrite=True, progress=False,
                         model=None if args.recipe else "vae", **networks, **options)
    train_seconds = time.perf_counter() - start
    rows = rundir.read_metrics(Path(args.out) / rundir.METRICS)
    result = {"library": "vaekit", "epoch_seconds": [r["seconds"] for r in rows], "epochs": len(rows),
              "train_seconds": train_seconds, "latent": model.latent_dim,
              "parameters": sum(p.numel() for p in model.parameters()),
              "threads": torch.get_num_threads()}
    if "val_elbo" in rows[-1]:
        result["val_loss"] = -rows[-1]["val_elbo"]
    if args.evaluate:
        splits = vaekit.load_data(args.data)
        result.update(evaluation(model, splits.test, args.nll_n, args.nll_k, splits.info))
    print(json.dumps(result))


def evaluation(model, test, nll_n: int, nll_k: int, info=None) -> dict:
    """Seconds to encode ``test`` (posterior means), its ELBO, and the importance-sampled NLL of
    its first ``nll_n`` examples with ``nll_k`` samples, with the values."""
    timed = {}
    start = time.perf_counter()
    posterior_moments(model, test, batch_size=1000)
    timed["encode_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    timed["test_elbo"] = evaluate_elbo(model, test, batch_size=1000, info=info)["elbo"]
    timed["elbo_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    timed["nll"] = -evaluate_log_likelihood(model, test.subset(torch.arange(nll_n)), k=nll_k, info=info)["log_likelihood"]
    timed["nll_seconds"] = time.perf_counter() - start
    return {**timed, "n_test": len(test), "nll_n": nll_n, "nll_k": nll_k}


if __name__ == "__main__":
    main()
