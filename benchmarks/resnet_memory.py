"""Where the memory of a ResNet training step goes: parameters and Adam's state, the activations autograd
keeps for backward, and the rest, with and without --checkpoint-activations.

    python benchmarks/resnet_memory.py [--recipe resnet] [--size 64] [--batch-size 64] [--steps 2]

Each setting trains ``--steps`` optimizer steps of ``--recipe`` on random ``--size`` px colour images held in
memory (no data pipeline: benchmarks/image_stream.py measures that), through ``vaekit.train``, in a process
of its own, and reports:

- ``import_rss_gb``: the process's resident memory after importing torch and vaekit and making the data;
- ``params_adam_gb``: the parameters, their gradients and Adam's two moments, 4 x 4 bytes per parameter;
- ``saved_activations_gb``: the tensors autograd keeps from the forward for the backward of one step, each
  storage counted once (parameters left out), read by ``torch.autograd.graph.saved_tensors_hooks`` and
  counted where the graph still holds it when the backward starts (temporary graphs are left out); with
  --checkpoint-activations the inputs each recomputed block keeps are added (torch.utils.checkpoint holds
  them outside those hooks), read from its calls;
- ``peak_rss_gb``: the process's peak resident memory (VmHWM), and ``rest_gb``, the peak less the three
  above: the gradients of the activations in backward, the recomputed block's activations, convolution
  workspaces and freed memory malloc has not given back;
- ``step_s``: seconds per step (setup excluded; the machine is shared, so only the memory numbers count).

Results: printed, and benchmarks/results/resnet-memory.json (``--out NAME``: NAME.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
GB = 1e9


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def measure(args) -> dict:
    """One setting, in this process."""
    import numpy as np
    import torch
    import vaekit
    import torch.utils.checkpoint

    n = -(-args.steps * args.batch_size * 10 // 9)  # the 10% validation split leaves steps x batch to train
    tmp = Path(tempfile.mkdtemp(prefix="resnet-memory-"))
    np.save(tmp / "x.npy", np.random.default_rng(0).random((n, 3, args.size, args.size), dtype=np.float32))
    import_rss = status_kb("VmRSS")

    steps, saved, step_times = [], {}, []

    def keep(t):
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = (weakref.ref(t), storage.nbytes())

    def pack(t):
        if not (t.is_leaf and t.requires_grad):  # parameters are counted with Adam's state
            keep(t)
        return t

    def unpack(t):
        if saved:  # the first unpack of a backward: what the forward saved and the graph still holds
            steps.append(sum(n for ref, n in saved.values() if ref() is not None))
            saved.clear()
            step_times.append(time.perf_counter())
        return t

    real_checkpoint = torch.utils.checkpoint.checkpoint

    def checkpoint(function, *inputs, **kwargs):  # what a recomputed block keeps: its inputs
        for x in inputs:
            if isinstance(x, torch.Tensor):
                keep(x)
        return real_checkpoint(function, *inputs, **kwargs)

    torch.utils.checkpoint.checkpoint = checkpoint
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        model = vaekit.train(str(tmp / "x.npy"), out=tmp / "run", recipe=args.recipe, epochs=1,
                             batch_size=args.batch_size, val_fraction=0.1, progress=False,
                             checkpoint_activations=args.checkpoint_activations, sets=args.sets)
    peak = status_kb("VmHWM")
    params = sum(p.numel() for p in model.parameters())
    params_adam = params * 4 * 4
    activations = max(steps)
    return {
        "checkpoint_activations": args.checkpoint_activations, "params": params,
        "import_rss_gb": import_rss / GB, "params_adam_gb": params_adam / GB,
        "saved_activations_gb": activations / GB, "saved_per_step_gb": [s / GB for s in steps],
        "peak_rss_gb": peak / GB, "rest_gb": (peak - import_rss - params_adam - activations) / GB,
        "step_s": (step_times[-1] - step_times[0]) / max(1, len(step_times) - 1) if len(step_times) > 1 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="resnet")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--settings", default="off,on", help="which settings of --checkpoint-activations to run")
    parser.add_argument("--out", default="resnet-memory")
    parser.add_argument("--one", choices=("on", "off"), help=argparse.SUPPRESS)  # one setting, in this process
    args = parser.parse_args()
    if args.one:
        args.checkpoint_activations = args.one == "on"
        print(json.dumps(measure(args)))
        return
    rows = []
    for one in args.settings.split(","):
        done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--one", one], check=True,
                              capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "recipe": args.recipe, "size": args.size, "batch_size": args.batch_size, "steps": args.steps,
        "sets": args.sets, "rows": rows,
        "peak_ratio_on_off": rows[-1]["peak_rss_gb"] / rows[0]["peak_rss_gb"] if len(rows) == 2 else None,
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs (shared with other work while measured)",
        "command": "python benchmarks/resnet_memory.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
