"""Which speed techniques help: each one timed against its alternative in one invocation.

    python benchmarks/techniques.py [--rounds 5] [--steps 60] [--only NAME ...] [--out benchmarks/results]

Every figure runs vaekit's own training step (``Trainer._optimize`` on the registered
objective) or its own evaluation functions on synthetic 28x28 data with Fashion-MNIST's shape,
in this process. The two sides of each comparison alternate for ``--rounds`` rounds and the
table reports the median time of each and their ratio (B / A; below 1 means B is faster).
Timings on a shared machine are noisy: compare the ratios, which are measured side by side.
``--only NAME ...`` re-measures those rows and keeps the other rows of the saved table.

Techniques (A: the alternative, B: what vaekit does by default, or the opt-in setting):
  fused-adam        Adam foreach kernels vs the fused kernel (default)
  no-step-sync      reading the loss every step (``if not isfinite``) vs the on-device watch
  unchecked-dists   torch.distributions argument checks on vs off during training (default off)
  inference-mode    evaluation under torch.no_grad vs torch.inference_mode
  nll-chunk         importance-sampling rows per chunk: 8192 vs 2048
  gather            a shuffled batch taken by advanced indexing vs index_select (default)
  malloc            glibc's malloc as it comes vs keeping freed memory (the vaekit command's default; vaekit.malloc),
                    timed in fresh processes, for the conv recipe and the MLP steps
  threads           1 thread vs all cores (torch.get_num_threads() at start)
  channels-last     the conv recipe's activations in NCHW vs channels-last order (default)
  compile           eager vs torch.compile'd networks (compile time reported separately)
  bf16              fp32 vs bf16 autocast of the networks (needs BF16 instructions to pay off)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest.mock import patch

import torch

from vaekit.app.options import apply_options, base_config
from vaekit.contract import bounds
from vaekit.data.batching import rows as batch_rows
from vaekit.data.types import DataInfo, DataSplits, TensorData
from vaekit.malloc import keep_freed_memory
from vaekit.evaluate import evaluate_elbo, evaluate_log_likelihood
from vaekit.models.build import build_model
from vaekit.nn import conv
from vaekit.train.acceleration import compiled_networks, cpu_has_bf16, network_precision
from vaekit.train.optimizers import make_optimizers
from vaekit.train.trainer import Trainer
from vaekit.train.watch import distribution_checks

SHAPE = (1, 28, 28)


def trainer_for(recipe: str, batch: int, **options) -> Trainer:
    """A Trainer of ``recipe`` (latent 16, hidden 512 for the MLP) on random 28x28 images."""
    cfg = apply_options(base_config(recipe), dict(data="digits", latent_dim=16, batch_size=batch, **options), [])
    cfg.model.data_shape, cfg.model.likelihood.name = list(SHAPE), "bernoulli"
    if recipe == "mlp":
        cfg.model.network.args["hidden"] = [512]
    torch.manual_seed(0)
    model = build_model(cfg.model)
    data = TensorData(torch.rand(batch * 8, *SHAPE))
    splits = DataSplits(data, TensorData(data.x[:0]), data, DataInfo("synthetic", "image", SHAPE))
    trainer = Trainer(model, splits, cfg, tempfile.mkdtemp(), progress=False)
    trainer.optimizers = make_optimizers(model.parameter_groups(), cfg.train)
    return trainer


def time_steps(trainer: Trainer, steps: int, sync: bool = False, context=nullcontext) -> float:
    """Seconds per training step through the trainer's own objective and optimizer path."""
    x = trainer.splits.train.x[: trainer.tc.batch_size]
    trainer.model.train()

    def step():
        out = trainer.objective(trainer.model, x, None, kl_weight=1.0)
        if sync and not torch.isfinite(out.losses["main"]):  # what the trainer did before the watch
            raise RuntimeError("non-finite loss")
        trainer.optimize(out.losses)
        trainer.loop.step += 1

    with context():
        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
    return (time.perf_counter() - start) / steps


@contextmanager
def threads(n: int):
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def nll_seconds(trainer: Trainer, n: int, k: int) -> float:
    data = TensorData(trainer.splits.train.x[:n])
    start = time.perf_counter()
    evaluate_log_likelihood(trainer.model, data, k=k, max_rows=bounds.MAX_ROWS)
    return (time.perf_counter() - start) / n


def elbo_seconds(trainer: Trainer) -> float:
    data = trainer.splits.train
    start = time.perf_counter()
    evaluate_elbo(trainer.model, data, batch_size=1000)
    return (time.perf_counter() - start) / len(data)


def comparisons(args):
    """name -> (what is timed, unit, A label, B label, fn(side) -> seconds per item)."""
    mlp = {128: trainer_for("mlp", 128)}
    conv_trainer = trainer_for("conv", 128)
    adam = {False: _foreach(trainer_for("mlp", 128)), True: trainer_for("mlp", 128)}
    cores = torch.get_num_threads()
    pool = torch.rand(54000, *SHAPE) if not args.only or "gather" in args.only else None
    out = {
        "fused-adam": ("MLP training step, batch 128", "ms/step", "foreach", "fused",
                       lambda side: time_steps(adam[side], args.steps)),
        "no-step-sync": ("MLP training step, batch 128", "ms/step", "isfinite read per step", "watch",
                         lambda side: time_steps(mlp[128], args.steps, sync=not side)),
        "unchecked-dists": ("MLP training step, batch 128", "ms/step", "checks on", "checks off",
                            lambda side: time_steps(mlp[128], args.steps,
                                                    context=lambda: distribution_checks(not side))),
        "inference-mode": ("test ELBO, 1024 images", "ms/image", "no_grad", "inference_mode",
                           lambda side: _within(torch.inference_mode() if side else nullcontext(),
                                                lambda: elbo_seconds(mlp[128]))),
        "nll-chunk": (f"NLL k={args.k}", "ms/image", "8192 rows", "2048 rows",
                      lambda side: _within(patch.object(bounds, "MAX_ROWS", 2048 if side else 8192),
                                           lambda: nll_seconds(mlp[128], args.nll_n, args.k))),
        "gather": ("a shuffled batch of 512 from 54,000 images", "ms/batch", "x[idx]", "index_select",
                   lambda side: gather_seconds(pool, side, args.steps)),
        "malloc-conv": ("conv recipe training step, batch 128", "ms/step", "malloc as it comes", "keep freed memory",
                        lambda side: fresh_process_step("conv", 128, max(10, args.steps // 3), side)),
        "malloc-mlp": ("MLP training step, batch 512", "ms/step", "malloc as it comes", "keep freed memory",
                       lambda side: fresh_process_step("mlp", 512, args.steps, side)),
        "threads": ("MLP training step, batch 128", "ms/step", "1 thread", f"{cores} threads",
                    lambda side: _within(threads(cores if side else 1), lambda: time_steps(mlp[128], args.steps))),
        "channels-last": ("conv recipe training step, batch 128", "ms/step", "NCHW", "channels-last activations",
                          lambda side: _within(nullcontext() if side else patch.object(conv, "CHANNELS_LAST", torch.contiguous_format),
                                               lambda: time_steps(conv_trainer, max(10, args.steps // 3)))),
        "bf16": ("MLP training step, batch 128", "ms/step", "fp32", "bf16 autocast",
                 lambda side: _within(network_precision(mlp[128].model, "bf16" if side else "fp32",
                                                        torch.device("cpu")),
                                      lambda: time_steps(mlp[128], max(5, args.steps // 10)))),
    }
    return out


def gather_seconds(pool: torch.Tensor, index_select: bool, batches: int) -> float:
    """Seconds per shuffled batch of 512 taken from ``pool`` as the trainer's batching does."""
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for i in range(batches):
        idx = order[i * 512:(i + 1) * 512]
        batch_rows(pool, idx) if index_select else pool[idx]
    return (time.perf_counter() - start) / batches


def fresh_process_step(recipe: str, batch: int, steps: int, keep: bool) -> float:
    """Seconds per training step in a new process whose malloc is, or is not, tuned by
    vaekit.malloc (a process-wide setting that cannot be undone within one process)."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import techniques as t; "
            f"t.keep_freed_memory(); print(t.time_steps(t.trainer_for({recipe!r}, {batch}), {steps}))")
    env = dict(os.environ, VAEKIT_KEEP_FREED_MEMORY="1" if keep else "0")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the {recipe} step in a fresh process failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.split()[-1])


def _foreach(trainer: Trainer) -> Trainer:
    trainer.optimizers = {name: torch.optim.Adam(params, lr=1e-3, foreach=True)
                          for name, params in trainer.model.parameter_groups().items()}
    return trainer


def _within(ctx, fn):
    with ctx:
        return fn()


def compile_figures(args) -> dict:
    """Eager vs compiled networks (inductor), interleaved after compiling; compile time apart."""
    eager, compiled = trainer_for("mlp", 128), trainer_for("mlp", 128)
    times = {"eager": [], "compiled": []}
    with compiled_networks(compiled.model):
        start = time.perf_counter()
        time_steps(compiled, 1)
        compile_s = time.perf_counter() - start
        for _ in range(args.rounds):
            times["eager"].append(time_steps(eager, args.steps))
            times["compiled"].append(time_steps(compiled, args.steps))
    return _row("compile", "MLP training step, batch 128", "ms/step", "eager", "torch.compile", times["eager"],
                times["compiled"], note=f"compiling took {compile_s:.1f} s (first step, cache cold or warm)")


def _row(name, what, unit, a, b, ta, tb, note=""):
    ma, mb = statistics.median(ta), statistics.median(tb)
    return {"technique": name, "timed": what, "unit": unit, "A": a, "B": b, "A_value": round(ma * 1e3, 3),
            "B_value": round(mb * 1e3, 3), "ratio_B_over_A": round(mb / ma, 3), "rounds": len(ta), "note": note}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--nll-n", type=int, default=16)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    keep_freed_memory()  # as the vaekit command does
    rows = []
    for name, (what, unit, a, b, fn) in comparisons(args).items():
        if args.only and name not in args.only:
            continue
        if name == "bf16" and not cpu_has_bf16():
            what += " (this CPU has no BF16 instructions)"
        fn(False), fn(True)  # warm-up both sides
        ta, tb = [], []
        for _ in range(args.rounds):
            ta.append(fn(False))
            tb.append(fn(True))
        rows.append(_row(name, what, unit, a, b, ta, tb))
        print(json.dumps(rows[-1]), flush=True)
    if not args.only or "compile" in args.only:
        rows.append(compile_figures(args))
        print(json.dumps(rows[-1]), flush=True)
    command = "python benchmarks/techniques.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"command": command.strip(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_bf16": cpu_has_bf16()}
    saved = out / "techniques.json"
    if args.only and saved.exists():  # keep the rows not re-measured, in their order
        fresh, before = {r["technique"]: r for r in rows}, json.loads(saved.read_text())
        rows = [fresh.pop(r["technique"], r) for r in before["rows"]] + list(fresh.values())
        base = before["meta"]["command"].split(" (other rows: ")[-1].rstrip(")")
        meta["command"] += f" (other rows: {base})"
    (out / "techniques.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"`{meta['command']}` ({meta['threads']} threads; medians of {args.rounds} alternating rounds; "
             "ratio = B / A, below 1 means B is faster)", "",
             "| technique | timed | A | B | A | B | B / A | note |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['technique']} | {r['timed']} | {r['A']} | {r['B']} | {r['A_value']} {r['unit']} | "
                     f"{r['B_value']} {r['unit']} | {r['ratio_B_over_A']:.2f} | {r['note']} |")
    (out / "techniques.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
