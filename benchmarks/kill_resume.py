"""Kill training with SIGKILL at random moments, resume, repeat; the finished run must equal an
uninterrupted one bit for bit.

For each variant (a VAE; FactorVAE, with two optimizers; VQ-VAE, with EMA codebook buffers; a tiny
ResNet on a folder of 16 px images streamed by worker processes, augmented with flips and crops and
averaging its weights with --ema; kl-patchgan, a tiny autoencoder-kl-small whose PatchGAN starts at
step 10; vqgan-ema, a tiny vqgan-small with that PatchGAN on an EMA codebook with dead-code restarts)
it trains a reference run, then the same run again while killing it ``--kills`` times:
  - at a random time (in start-up, or within a few steps of a random step of the run's life), or
  - at a crash point (vaekit/faults.py): after the N-th optimizer step, mid-write (the temp file
    written, not yet renamed), during validation, or before a plot.
After every kill the run directory must load (config, state.pt, weights), and the same command
with ``--resume`` continues it (a run killed before its first checkpoint starts over). At the end
the weights (averaged and raw), best weights, training state and metric rows must equal the
reference's, and no temp file may be left. Each process is forked from one of two servers that
imported torch and vaekit once (fork_server.py: a short run's process otherwise spends most of its
life importing); ``--fresh`` starts every one from scratch instead.

    python benchmarks/kill_resume.py                      # long form: 20 kills per variant
    python benchmarks/kill_resume.py --kills 2 --epochs 2 --no-plots --variants factorvae,vqvae
                                                          # the short form tests/test_kill.py runs
    make crash-test                                        # the long form, results in benchmarks/results/
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Optional, Union

import numpy as np
import torch
from safetensors.torch import load_file

import vaekit
from vaekit import rundir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fork_server import ForkServer  # noqa: E402

SMALL = ["--batch-size", "128", "--seed", "1", "--checkpoint-every", "4"]
DIGITS = ["--data", "digits", "--network", "mlp", "--hidden", "32"]
IMAGES = "images-16px"  # a folder of small images of mixed sizes, written beside the runs (image_folder)
VARIANTS = {
    "vae": DIGITS,
    "factorvae": DIGITS + ["--model", "factorvae", "--set", "model.structure.args.disc_hidden=64",
                           "--set", "model.structure.args.disc_layers=2"],
    "vqvae": DIGITS + ["--model", "vqvae", "--set", "model.structure.args.codes=32",
                       "--set", "model.structure.args.code_dim=8"],
    "resnet-stream": ["--data", IMAGES, "--network", "resnet", "--widths", "4,8", "--blocks", "1", "--norm-groups", "2",
                      "--dense", "16", "--latent-dim", "4", "--image-size", "16", "--channels", "3", "--stream",
                      "--workers", "2", "--augment", "flip,crop", "--ema", "0.9", "--batch-size", "8"],
    # the LDM autoencoder, shrunk: its PatchGAN (BatchNorm, hinge, adaptive weight, its own Adam) starts at step
    # 10 of 18, so kills land before and after it; weight averaging on
    "kl-patchgan": ["--recipe", "autoencoder-kl-small", "--data", IMAGES, "--widths", "4,8", "--blocks", "1",
                       "--norm-groups", "2", "--downsample", "2", "--image-size", "16", "--channels", "3",
                       "--batch-size", "8", "--disc-start", "10", "--ema", "0.9",
                       "--set", "model.discriminator.args.width=8", "--set", "model.discriminator.args.n_layers=2"],
    # vqgan-small's layout and PatchGAN on an EMA codebook (--model vqvae) of 128 codes (some unused: the
    # restarts of dead and of 2 steps idle codes happen; random draws from torch's generator); weight averaging on
    "vqgan-ema": ["--recipe", "vqgan-small", "--model", "vqvae", "--data", IMAGES, "--widths", "4,8", "--blocks", "1",
                  "--norm-groups", "2", "--downsample", "2", "--latent-channels", "4", "--image-size", "16",
                  "--channels", "3", "--batch-size", "8", "--disc-start", "10", "--ema", "0.9",
                  "--set", "model.discriminator.args.width=8", "--set", "model.discriminator.args.n_layers=2",
                  "--set", "model.structure.args.codes=128", "--set", "model.structure.args.restart_after=2"],
}
MODES = ("time", "step", "write", "validate", "plot")


def vaekit_command(*args) -> list:
    return [sys.executable, "-m", "vaekit", "train", *args, "--no-progress"]


def launch(command: list, crash_at: Optional[str] = None, due: Optional[Callable[[], bool]] = None,
           server: Optional[ForkServer] = None) -> int:
    """Run ``command`` (forked from ``server``, if given); SIGKILL it once ``due()`` says so (or let
    VAEKIT_CRASH_AT kill it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("VAEKIT_CRASH_AT", None)
    if crash_at:
        env["VAEKIT_CRASH_AT"] = crash_at
    with tempfile.TemporaryDirectory() as folder:
        err = Path(folder) / "stderr"
        if server is None:
            with err.open("w") as f:
                child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=f, text=True, env=env)
        else:  # command is [python, -m, vaekit, ...]
            child = server.start(command[3:], {"VAEKIT_CRASH_AT": crash_at or ""}, err)
        while child.poll() is None:
            if due is not None and due():
                child.kill()
                break
            time.sleep(0.01)
        child.wait()
        if child.returncode not in (0, -signal.SIGKILL):
            raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{err.read_text()}")
    return child.returncode


def timer(run: Path, position: int, every: int, step_seconds: float, rng: random.Random) -> Callable[[], bool]:
    """Due at a random moment within about ``every`` steps' time after state.pt passed ``position`` - ``every``
    (at once, if it already has: then the kill lands in start-up), and at the latest once state.pt passes
    ``position``: the wait is the reference run's step time, and a process running faster than its reference
    (a machine less busy than then) would otherwise finish before the kill."""
    target, wait, reached, read = position - every, rng.random() * every * step_seconds, [], {}

    def saved_step() -> int:  # state.pt read again only once a write replaced it, not at every 10 ms poll
        try:
            key = (run / rundir.STATE).stat().st_mtime_ns
        except FileNotFoundError:
            return 0
        if key not in read:
            read.clear()
            read[key] = _saved_step(run)
        return read[key]

    def due() -> bool:
        saved = saved_step()
        if not reached and saved >= target:
            reached.append(time.perf_counter())
        return bool(reached) and (time.perf_counter() - reached[0] >= wait or saved >= position)
    return due


def check_loads(run: Path) -> str:
    """What of the run directory is on disk; each part must load."""
    if not rundir.is_run(run):
        return "nothing"
    rundir.read_config(run)
    if not (run / rundir.STATE).exists():
        return "config"
    state = rundir.load_state(run / rundir.STATE)
    if (run / rundir.WEIGHTS).exists():
        vaekit.load(run)
    return f"epoch {state['epoch']}, step {state['step']}"


def metric_rows(run: Path) -> list:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rundir.read_metrics(run / rundir.METRICS)]


def differences(run: Path, reference: Path) -> list:
    """What differs between two finished runs (empty: the same bits)."""
    found = []
    for name in (rundir.WEIGHTS, rundir.BEST, rundir.RAW):
        if not (reference / name).exists() and not (run / name).exists():  # raw.safetensors: with --ema only
            continue
        if not (run / name).exists():
            found.append(name)
            continue
        a, b = load_file(str(run / name)), load_file(str(reference / name))
        if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
            found.append(name)
    sa, sb = (torch.load(r / rundir.STATE, weights_only=True) for r in (run, reference))
    for key in ("model", "optimizers", "ema"):
        if not _same(sa.get(key), sb.get(key)):
            found.append(f"state.pt {key}")
    if not torch.equal(sa["torch_rng"], sb["torch_rng"]):
        found.append("state.pt torch_rng")
    if metric_rows(run) != metric_rows(reference):
        found.append(rundir.METRICS)
    plots = sorted(p.name for p in (reference / rundir.PLOTS).glob("*.png"))
    if sorted(p.name for p in (run / rundir.PLOTS).glob("*.png")) != plots:
        found.append("plots")
    if temp_files(run):
        found.append("temp files left")
    return found


def temp_files(run: Path) -> list:
    """The temp files in the run directory and its plots/, as paths relative to it."""
    files = [*run.glob("*"), *(run / rundir.PLOTS).glob("*")]
    return [str(p.relative_to(run)) for p in files if p.name.endswith(".tmp")]


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def kill_plan(kills: int, rng: random.Random, total_steps: int, plots: int, offset: int = 0) -> list:
    """(mode, position) pairs: every mode about equally often (starting at MODES[offset]), each aimed
    at a random optimizer step of the run's life, in order of that step; the kills while plotting
    come last, once training is over (none without ``plots``)."""
    kinds = MODES if plots else MODES[:-1]
    modes = [kinds[(offset + i) % len(kinds)] for i in range(kills)]
    rng.shuffle(modes)
    plan = sorted((total_steps if mode == "plot" else rng.randint(1, total_steps), mode == "plot", mode)
                  for mode in modes)
    return [(mode, position) for position, _, mode in plan]


def crash_point(mode: str, position: int, now: int, steps_per_epoch: int, every: int, plots: int,
                rng: random.Random) -> str:
    """VAEKIT_CRASH_AT for a kill at about step ``position`` of a process resumed at step ``now``."""
    ahead = max(position - now, 0)
    if mode == "step":
        return f"step:{max(ahead, 1)}"
    if mode == "validate":  # one validation per epoch end: the one of the epoch ``position`` falls in
        return f"validate:{max(-(-position // steps_per_epoch) - now // steps_per_epoch, 1)}"
    if mode == "write":  # about one write per mid-epoch checkpoint, three at an epoch's end
        return f"write:{max(ahead // every + 2 * (ahead // steps_per_epoch), 0) + rng.randint(1, 3)}"
    return f"plot:{rng.randint(1, plots)}"


def image_folder(folder: Path, n: int = 96, seed: int = 0) -> Path:
    """``n`` random RGB images of 16 to 23 px a side, PNG and JPEG (the same files for every seed)."""
    from PIL import Image  # vaekit reads image folders with Pillow, a core dependency

    g = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = (int(v) for v in g.integers(16, 24, 2))
        image = Image.fromarray(g.integers(0, 256, (h, w, 3), dtype=np.uint8))
        image.save(folder / f"{i:03d}.{'jpg' if i % 2 else 'png'}")
    return folder


def variant_args(name: str, folder: Path) -> list:
    """The variant's training options; its image folder is written into ``folder`` first, if it uses one."""
    args = SMALL + VARIANTS[name]
    if IMAGES in args:
        images = folder / IMAGES
        if not images.is_dir():
            image_folder(images)
        args = [str(images) if a == IMAGES else a for a in args]
    return args


def run_variant(name: str, folder: Path, kills: int, epochs: int, seed: int, offset: int = 0,
                plots: bool = True, servers: tuple = (None, None)) -> dict:
    """The reference run, then the killed one. With two fork servers (fork_server.py) the reference
    comes from the first and the killed run's launches alternate between them, starting with the
    second: each process has another string-hash seed than the one it resumes."""
    args = variant_args(name, folder) + ["--epochs", str(epochs), "--plots" if plots else "--no-plots"]
    reference, run = folder / f"{name}-reference", folder / f"{name}-killed"
    start = time.perf_counter()
    launch(vaekit_command(*args, "--out", str(reference)), server=servers[0])
    seconds = time.perf_counter() - start
    rows = rundir.read_metrics(reference / rundir.METRICS)
    total_steps, every = rows[-1]["step"], int(args[args.index("--checkpoint-every") + 1])
    steps_per_epoch = total_steps // epochs
    step_seconds = sum(row["seconds"] for row in rows) / total_steps
    rng = random.Random(f"{seed}-{name}")
    plotted = len(list((reference / rundir.PLOTS).glob("*.png")))
    plan, done, landed, launches = kill_plan(kills, rng, total_steps, plotted, offset), Counter(), [], 0
    while True:
        command = (vaekit_command("--out", str(run), "--resume") if rundir.is_run(run)
                   else vaekit_command(*args, "--out", str(run)))
        command += [] if plots else ["--no-plots"]
        now = _saved_step(run)
        mode, position = plan[0] if plan else (None, None)
        crash = None if mode in (None, "time") else crash_point(mode, position, now, steps_per_epoch, every,
                                                                 plotted, rng)
        due = timer(run, position, every, step_seconds, rng) if mode == "time" else None
        code = launch(command, crash_at=crash, due=due, server=servers[(launches + 1) % 2])
        launches += 1
        if code == 0:
            if plan:
                raise RuntimeError(f"{name}: the run finished after {sum(done.values())} kills, before the "
                                   f"{kills} planned ({mode} at step {position} was next)")
            break
        plan.pop(0)
        done[mode] += 1
        landed.append(check_loads(run))
    problems = differences(run, reference)
    return {"variant": name, "kills": sum(done.values()), "by_mode": dict(done), "launches": launches,
            "states_after_kills": landed, "identical": not problems, "differences": problems,
            "temp_files": temp_files(run), "seconds_per_launch": round(seconds, 1)}


def _saved_step(run: Path) -> int:
    """The optimizer step state.pt holds (0 before the first)."""
    path = run / rundir.STATE
    return int(rundir.load_state(path)["step"]) if path.exists() else 0


def run_all(names: list, folder: Path, kills: Union[int, Dict[str, int]], epochs: int, seed: int = 0,
            plots: bool = True, fork: bool = True):
    """Every variant side by side (one thread each, driving its processes): (results, errors).
    ``kills``: per variant, or one number for all. ``fork``: processes forked from two fork servers
    (fork_server.py), not started from scratch."""
    folder.mkdir(parents=True, exist_ok=True)
    results, errors = {}, {}
    servers = (None, None)
    if fork:
        env = {"OMP_NUM_THREADS": "1"}
        seeds = random.Random().sample(range(1, 2 ** 32), 2)  # as random as a fresh interpreter's
        servers = tuple(ForkServer(hash_seed=s, env=env) for s in seeds)
    count = kills if isinstance(kills, dict) else dict.fromkeys(names, kills)

    def work(name):
        # the variants start at different kill moments, so even two kills each cover them all
        offset = sum(count[n] for n in names[:names.index(name)])
        try:
            results[name] = run_variant(name, folder, count[name], epochs, seed, offset=offset, plots=plots,
                                        servers=servers)
        except Exception as e:  # reported with the others' results
            errors[name] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for server in servers:
            if server is not None:
                server.close()
    return [results[n] for n in names if n in results], errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per variant")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="train without plots (and no "
                        "kills while plotting): the short form")
    parser.add_argument("--fresh", action="store_true", help="start every process from scratch (python -m vaekit) "
                        "instead of forking it from a server with torch imported")
    parser.add_argument("--dir", default=None, help="where the runs go (default: a temp folder)")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/kill_resume.{json,md}")
    args = parser.parse_args(argv)
    folder = Path(args.dir or tempfile.mkdtemp(prefix="vaekit-kill-"))
    start = time.perf_counter()
    rows, errors = run_all(args.variants.split(","), folder, args.kills, args.epochs, args.seed, args.plots,
                           fork=not args.fresh)
    for row in rows:
        print(f"{row['variant']:>10}: {row['kills']} kills {row['by_mode']} in {row['launches']} launches; "
              f"{'identical to the uninterrupted run' if row['identical'] else 'DIFFERS: ' + ', '.join(row['differences'])}")
    for name, error in errors.items():
        print(f"{name:>10}: ERROR {error}")
    total = sum(r["kills"] for r in rows)
    print(f"{total} kills in {time.perf_counter() - start:.0f} s; runs in {folder}")
    if args.save:
        _save(rows, errors, args, time.perf_counter() - start)
    return 0 if rows and all(r["identical"] for r in rows) and not errors else 1


def _save(rows, errors, args, seconds) -> None:
    """Add this run to benchmarks/results/kill_resume.{json,md}, replacing an earlier run of the same command."""
    out = Path(__file__).parent / "results"
    flags = ("" if args.plots else " --no-plots") + (" --fresh" if args.fresh else "")
    command = (f"python benchmarks/kill_resume.py --kills {args.kills} --epochs {args.epochs} --seed {args.seed} "
               f"--variants {args.variants}{flags} --save")
    path = out / "kill_resume.json"
    saved = json.loads(path.read_text()) if path.exists() else {"runs": []}
    runs = [r for r in saved.get("runs", [saved] if "command" in saved else []) if r["command"] != command]
    runs.append({"command": command, "processes": "started from scratch" if args.fresh else "forked (fork_server.py)",
                 "seconds": round(seconds), "load_average_1min": round(os.getloadavg()[0], 1),
                 "results": rows, "errors": errors})
    path.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    lines = []
    for run in runs:
        lines += [f"`{run['command']}`" + (f" ({run['seconds']} s, processes {run['processes']}, load average "
                                           f"{run['load_average_1min']} on 2 cores)" if "seconds" in run else ""),
                  "", "| variant | kills | by moment | launches | bit-identical |", "|---|---|---|---|---|"]
        for r in run["results"]:
            moments = ", ".join(f"{k} {v}" for k, v in sorted(r["by_mode"].items()))
            lines.append(f"| {r['variant']} | {r['kills']} | {moments} | {r['launches']} | "
                         f"{'yes' if r['identical'] else 'NO: ' + ', '.join(r['differences'])} |")
        lines += [""] + [f"{name}: ERROR {error}" for name, error in run["errors"].items()]
    lines.append(f"{sum(r['kills'] for run in runs for r in run['results'])} kills in all.")
    (out / "kill_resume.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
