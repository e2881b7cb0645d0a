"""Decode throughput of one run's decoder: PyTorch eager vs ONNX Runtime vs the exported program (torch.export),
at batch 1 and 256, medians of interleaved repeats in one process (so the three share the machine's load).

    .venv/bin/python benchmarks/export_speed.py [--recipe mlp] [--repeats 7]
writes benchmarks/results/export_speed.json. Each timing is codes decoded per second; ratios are against eager.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def per_second(fn, batch: int, seconds: float = 0.3) -> float:
    """Codes per second of ``fn`` over calls lasting at least ``seconds`` in all (after one warm-up call)."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="mlp")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="for torch and onnxruntime alike")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # on a shared machine, two spinning threads make torch 60x slower
    from vaekit.app import api
    from vaekit.export.graphs import Decoder, export_mode
    from vaekit.export.onnx_backend import OnnxModel
    from vaekit.export.writers import export_run

    root = Path(tempfile.mkdtemp(prefix="export-speed-"))
    run = api.train_run("digits", recipe=args.recipe, out=root / "run", epochs=1, progress=False)
    onnx = OnnxModel(export_run(run, "onnx", root / "onnx"), threads=args.threads)
    program = torch.export.load(str(export_run(run, "exported-program", root / "ep") / "decoder.pt2")).module()
    rows = []
    with export_mode(run.model) as model, torch.no_grad():
        eager = Decoder(model)
        for batch in (1, 256):
            z = torch.randn(batch, *model.latent_shape)
            zn = z.numpy()
            fns = {"pytorch eager": lambda: eager(z), "onnx runtime": lambda: onnx.decode(zn),
                   "exported program": lambda: program(z)}
            times = {name: [] for name in fns}
            for _ in range(args.repeats):  # interleaved: each repeat measures all three under the same load
                for name, fn in fns.items():
                    times[name].append(per_second(fn, batch))
            base = statistics.median(times["pytorch eager"])
            for name, values in times.items():
                rows.append({"batch": batch, "backend": name, "codes_per_s": round(statistics.median(values), 1),
                             "vs_eager": round(statistics.median(values) / base, 2)})
                print(json.dumps(rows[-1]), flush=True)
    result = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv), "recipe": args.recipe,
              "latent_shape": list(run.model.latent_shape), "threads": args.threads, "repeats": args.repeats,
              "torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs (timings noisy)",
              "rows": rows}
    (HERE / "results" / "export_speed.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
