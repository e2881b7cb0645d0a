"""One streamed epoch over a folder of JPEGs: peak memory, the share of each step spent waiting for data,
and images per second.

    python benchmarks/image_stream.py [--n 100000] [--size 64] [--workers 2] [--recipe conv]
                                      [--set PATH=VALUE ...] [--dir DIR] [--keep]

Writes ``--n`` synthetic JPEGs (quality 90) of mixed sizes, each side drawn from 80..120 px, made of a
smooth colour gradient, a few discs and a little noise (so they compress like photos, not like noise),
in two processes. Then trains one epoch with ``vaekit.train(folder, stream=True, image_size=SIZE,
channels=3, workers=W)`` of ``--recipe`` (default ``conv``; ``--recipe resnet`` once that recipe exists;
``--set`` passes any config value) and reports:

- peak memory, sampled every 0.1 s from /proc/PID/smaps_rollup of this process and every process below it
  (its decoding workers): ``peak_pss_gb``, the peak of the tree's PSS summed (a page shared by the parent and
  its forked workers split among them), which is what the machine holds and the number the 2 GB target is
  about; ``peak_rss_training_process_gb``, the training process's own RSS; and in ``peaks_gb`` (whole run)
  and ``peaks_gb_by_phase`` (setup; train: the training epoch; after-train: the prior fit, validation and
  saving) the peaks of the tree's PSS and RSS (RSS summed counts a shared page once per process: an upper
  bound), the training process's PSS and RSS, and the workers' PSS summed, each on its own (so they need
  not add up to the tree's peak);
- data wait: the time the training loop spent blocked waiting for its next decoded batch, as a share of
  the training loop's time (the training epoch only, not the validation pass or the setup; from the
  first batch's request to the last batch's request, so every step but the last);
- img/s: training images over the training loop's seconds; and the seconds of the setup (headers read,
  the data checks' pass over the training and validation splits, plots);
- the bound the data path sets: images per second of the same shuffled batches decoded alone, no model.
  Where a step takes less time than decoding its batch, the loop waits for the difference.

``--steps N`` ends the training epoch and the validation pass after N batches (the folder, its headers and
the splits stay whole), for a network too slow on this CPU for a whole epoch of 100,000 images; the result
then says how many hours the whole epoch would take at the measured rate.

Results: printed, and benchmarks/results/image-stream.json (``--out NAME``: NAME.json); the run is written to
DIR/run-NAME, so runs of other names can share ``--dir``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def write_image(args) -> None:
    folder, i = args
    from PIL import Image

    g = np.random.default_rng(i)
    h, w = (int(v) for v in g.integers(80, 121, 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = g.uniform(0, 255, (2, 3))
    img = a + (b - a) * (xx / w)[..., None]
    for _ in range(3):
        cy, cx, r = g.uniform(0, h), g.uniform(0, w), g.uniform(8, 30)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = g.uniform(0, 255, 3)
    img += g.normal(0, 4, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)


def write_folder(folder: Path, n: int) -> float:
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    with Pool(2) as pool:
        pool.map(write_image, [(folder, i) for i in range(n)], chunksize=256)
    return time.perf_counter() - start


def descendants(pid: int) -> list:
    """``pid`` and every process below it (children of any of its threads, theirs, ...), from /proc."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def tree_memory() -> tuple:
    """(RSS, PSS, this process's PSS, this process's RSS) bytes of this process and its descendants, from
    /proc. RSS counts a page shared by the parent and its forked workers once per process; PSS
    (smaps_rollup) splits it among them, so its sum is what the machine holds; the tree's PSS less this
    process's is its decoding workers'."""
    rss = pss = own = own_rss = 0
    for pid in descendants(os.getpid()):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                    own_rss += int(line.split()[1]) * 1024 if pid == os.getpid() else 0
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
                    own += int(line.split()[1]) * 1024 if pid == os.getpid() else 0
        except OSError:
            pass
    return rss, pss, own, own_rss


PEAKS = ("tree_pss", "tree_rss", "training_process_pss", "training_process_rss", "workers_pss")


class PeakRSS(threading.Thread):
    """Peaks of :data:`PEAKS` over the whole run and within each phase (``phase`` is set by the caller:
    setup, train, after-train = the prior fit, validation and saving), sampled every 0.1 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.phase, self.running = "setup", True
        self.peaks: dict = {}

    def run(self):
        while self.running:
            rss, pss, own, own_rss = tree_memory()
            sample = dict(zip(PEAKS, (pss, rss, own, own_rss, pss - own)))
            for scope in ("all", self.phase):
                peaks = self.peaks.setdefault(scope, dict.fromkeys(PEAKS, 0))
                for k, v in sample.items():
                    peaks[k] = max(peaks[k], v)
            time.sleep(0.1)

    def gb(self, scope: str = "all") -> dict:
        return {k: round(v / 1e9, 3) for k, v in self.peaks.get(scope, {}).items()}


def timed_reads(records: list, steps: int = 0, peak: "PeakRSS" = None):
    """``ImageRows.read_batches`` wrapped, inside the trainer's training epochs only: each call's batch count,
    the seconds blocked in it, and its span. With ``steps`` > 0 every pass (training and validation) ends
    after that many batches. ``peak``'s phase follows: train inside a training epoch, after-train after it."""
    from vaekit.data.image_stream import ImageRows
    from vaekit.train.trainer import Trainer

    real, real_epoch, training = ImageRows.read_batches, Trainer._train_epoch, [False]

    def train_epoch(self, *args, **kwargs):
        training[0] = True
        peak.phase = "train"
        try:
            return real_epoch(self, *args, **kwargs)
        finally:
            training[0] = False
            peak.phase = "after-train"

    def read_batches(self, batches):
        whole = sum(len(rows) for rows in batches)
        if steps:
            batches = batches[:steps]
        if not training[0]:
            yield from real(self, batches)
            return
        # the span runs from the first request to the request of the last batch: every step but the last
        # (the consumer asks for no batch after its last) is inside it
        row = {"batches": len(batches), "epoch_images": whole, "images": 0, "wait": 0.0,
               "start": time.perf_counter(), "end": None}
        records.append(row)
        for i, x in enumerate(real(self, batches)):
            row["wait"] += time.perf_counter() - (row["end"] or row["start"])
            yield x
            row["end"] = time.perf_counter()
            row["images"] += x.shape[0]

    ImageRows.read_batches = read_batches
    Trainer._train_epoch = train_epoch


def decode_alone(folder: Path, size: int, workers: int, batch_size: int) -> float:
    """Images per second of decoding the training split alone (shuffled batches, no model): the bound the
    data path sets."""
    from vaekit.data import load_data
    from vaekit.data.batching import iterate_batches
    import torch

    splits = load_data(str(folder), image_size=size, channels=3, stream=True, workers=workers)
    start = time.perf_counter()
    n = sum(x.shape[0] for x, _ in iterate_batches(splits.train, batch_size, shuffle=True,
                                                    generator=torch.Generator().manual_seed(0)))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recipe", default="conv")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=0,
                        help="end the epoch (and the validation pass) after this many batches: for a network too "
                             "slow here for a whole epoch; the JPEG folder and its index stay whole")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--dir", type=Path, default=None, help="where the JPEGs go (default: a temp folder)")
    parser.add_argument("--out", default="image-stream", help="results file name in benchmarks/results")
    parser.add_argument("--keep", action="store_true", help="keep the JPEGs (and reuse them when present)")
    args = parser.parse_args()

    import vaekit

    base = args.dir or Path(tempfile.mkdtemp(prefix="image-stream-"))
    folder = base / f"jpegs-{args.n}"
    made = 0.0 if (folder.is_dir() and len(list(folder.glob("*.jpg"))) == args.n) else write_folder(folder, args.n)
    print(f"{args.n} JPEGs in {folder} ({made:.0f} s to write)", flush=True)
    records: list = []
    peak = PeakRSS()
    timed_reads(records, args.steps, peak)
    peak.start()
    start = time.perf_counter()
    vaekit.train(str(folder), out=base / f"run-{args.out}", overwrite=True, recipe=args.recipe, epochs=1,
                 image_size=args.size,
                 channels=3, stream=True, workers=args.workers, batch_size=args.batch_size, progress=False,
                 sets=args.sets)
    total = time.perf_counter() - start
    peak.running = False
    peak.join()
    train = records[0]
    seconds = train["end"] - train["start"]
    info = vaekit.open_run(base / f"run-{args.out}").config.data_info
    steps, images = train["batches"], train["images"]
    result = {
        "n": args.n, "size": args.size, "workers": args.workers, "recipe": args.recipe, "sets": args.sets,
        "batch_size": args.batch_size, "train_steps": steps, "steps_timed": steps - 1,
        "epoch_cut_at_steps": args.steps or None,
        "epoch_images": train["epoch_images"],
        "full_epoch_hours_at_this_rate": train["epoch_images"] / (images / seconds) / 3600,
        "peak_pss_gb": peak.gb()["tree_pss"], "peak_rss_training_process_gb": peak.gb()["training_process_rss"],
        "peaks_gb": peak.gb(), "peaks_gb_by_phase": {phase: peak.gb(phase) for phase in ("setup", "train", "after-train")},
        "load_average_at_end": os.getloadavg(),
        "data_wait_share": train["wait"] / seconds,
        "img_per_s": images / seconds, "train_loop_s": seconds, "total_s": total,
        "setup_and_validation_s": total - seconds, "shape": info["shape"],
        "decode_alone_img_per_s": decode_alone(folder, args.size, args.workers, args.batch_size),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs (shared with other work while measured)",
        "command": "python benchmarks/image_stream.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
