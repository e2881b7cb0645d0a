"""Coverage-guided fuzzing (atheris, libFuzzer) of every loader that reads bytes from a file.

    python benchmarks/fuzz_atheris.py --seconds 60 --findings /tmp/findings \\
        --loaders idx,npy,npz,csv,image,config,state,safetensors,metrics,evaluation,sampler

Each loader runs in its own process for ``--seconds`` (or ``--runs`` inputs), starting from a seed
corpus of small valid files written here. The property: the loader returns, or raises VaekitError;
any other exception (or a warning, turned into one) is a finding, printed and saved under
``--findings`` (one file per distinct exception site); fuzzing then goes on. An input that takes
over 10 s or 2 GB is saved by libFuzzer itself (``--findings``/LOADER-timeout-..., -oom-...).

atheris is not a vaekit dependency: install it in a separate venv (see
benchmarks/results/fuzz_atheris.md). Not run by the test suite.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import numpy as np

LOADERS = ("idx", "npy", "npz", "csv", "image", "config", "state", "safetensors", "metrics", "evaluation",
           "sampler")
RUN_FILES = {"config": "config.json", "state": "state.pt", "safetensors": "model.safetensors",
             "metrics": "metrics.jsonl"}


# -- seed corpus ---------------------------------------------------------------------------------
def npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def png_bytes(mode: str, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (4, 4), 100).save(buf, format=fmt)
    return buf.getvalue()


def make_run(work: Path) -> Path:
    """A small trained run with a fitted gmm sampler (the valid run files)."""
    import vaekit

    run = work / "run"
    if not (run / "samplers" / "gmm.json").is_file():
        model = vaekit.train("digits", out=run, epochs=1, hidden=[8], latent_dim=2, batch_size=512, progress=False)
        vaekit.fit_sampler(model, "gmm", components=2, iterations=5)
    return run


def seeds(loader: str, run: Path) -> list:
    from vaekit.data.idx import write_idx

    images = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)
    if loader == "idx":
        out = []
        for arr, gz in ((images, False), (images, True), (np.arange(10, dtype=np.uint8), False)):
            path = run.parent / "seed-idx"
            write_idx(path, arr, compress=gz)
            out.append(path.read_bytes())
        return out
    if loader == "npy":
        return [npy_bytes(images), npy_bytes(np.linspace(-1, 1, 30).reshape(10, 3).astype(np.float32))]
    if loader == "npz":
        out = []
        for save in (np.savez, np.savez_compressed):
            buf = io.BytesIO()
            save(buf, x=images, y=np.arange(10) % 3)
            out.append(buf.getvalue())
        return out
    if loader == "csv":
        return [("a,b,c\n" + "".join(f"{i * 0.5},{-i},{i % 3}\n" for i in range(12))).encode()]
    if loader == "image":
        return [png_bytes("L"), png_bytes("RGB"), png_bytes("RGB", "JPEG"), png_bytes("P", "GIF")]
    if loader == "evaluation":
        return [b'{"digits:test:last:seed0": {"elbo": -1.5, "recon": 3.0}}']
    if loader == "sampler":
        return [b"J" + (run / "samplers" / "gmm.json").read_bytes(),
                b"W" + (run / "samplers" / "gmm.safetensors").read_bytes()]
    return [(run / RUN_FILES[loader]).read_bytes()]


# -- one loader, inside the fuzzing process ------------------------------------------------------
def target(loader: str, run: Path, scratch: Path):
    """``call(data: bytes)``: write ``data`` where ``loader`` reads it, and load it."""
    from vaekit import load, load_sampler, rundir
    from vaekit.app.evaluations import read_evaluations
    from vaekit.data import load_data

    folder = scratch / loader
    if loader == "image":
        for cls in ("a", "b"):
            (folder / cls).mkdir(parents=True, exist_ok=True)
            for i in range(3):
                (folder / cls / f"{i}.png").write_bytes(png_bytes("L"))
    if loader in RUN_FILES or loader == "sampler":
        shutil.copytree(run, folder, dirs_exist_ok=True)
    folder.mkdir(exist_ok=True)
    model = load(folder) if loader in ("safetensors", "sampler") else None  # loaded once, from the copy
    original = {name: (run / "samplers" / name).read_bytes() for name in ("gmm.json", "gmm.safetensors")}

    def call(data: bytes):
        if loader == "idx":
            (folder / "train-images-idx3-ubyte").write_bytes(data)
            return load_data(str(folder / "train-images-idx3-ubyte"))
        if loader == "npy":
            (folder / "x.npy").write_bytes(data)
            return load_data(str(folder / "x.npy"), stream=bool(len(data) % 2))
        if loader in ("npz", "csv"):
            (folder / f"d.{loader}").write_bytes(data)
            return load_data(str(folder / f"d.{loader}"))
        if loader == "image":
            (folder / "a" / "0.png").write_bytes(data)
            return load_data(str(folder))
        if loader == "evaluation":
            (folder / "evaluation.json").write_bytes(data)
            return read_evaluations(folder / "evaluation.json")
        if loader == "sampler":
            which = "gmm.json" if data[:1] != b"W" else "gmm.safetensors"
            other = "gmm.safetensors" if which == "gmm.json" else "gmm.json"
            (folder / "samplers" / which).write_bytes(data[1:])
            (folder / "samplers" / other).write_bytes(original[other])
            return load_sampler(folder, "gmm", model=model)
        path = folder / RUN_FILES[loader]
        path.write_bytes(data)
        if loader == "config":
            return rundir.read_config(folder)
        if loader == "state":
            return rundir.load_state(path)
        if loader == "safetensors":
            return rundir.load_weights(path, model)
        return rundir.read_metrics(path)

    return call


def fuzz_one(loader: str, run: Path, findings: Path, libfuzzer_args: list) -> None:
    import atheris

    with atheris.instrument_imports(include=["vaekit"]):  # coverage of vaekit's code guides the fuzzer
        for module in ("vaekit", "vaekit.data", "vaekit.app.evaluations", "vaekit.app.sampling"):
            importlib.import_module(module)
    from vaekit.errors import VaekitError

    scratch = Path(tempfile.mkdtemp(prefix=f"fuzz-{loader}-"))
    call = target(loader, run, scratch)
    seen = set()

    def test_one_input(data: bytes) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                call(data)
            except VaekitError:
                pass
            except Exception as e:  # noqa: BLE001 - anything but VaekitError is a finding
                frame = traceback.extract_tb(e.__traceback__)[-1]
                site = f"{type(e).__name__}@{Path(frame.filename).name}:{frame.lineno}"
                if site not in seen:
                    seen.add(site)
                    name = f"{loader}-{site.replace('@', '-').replace(':', '-')}-{hashlib.sha1(data).hexdigest()[:8]}"
                    (findings / name).write_bytes(data)
                    print(f"FINDING {loader} {site}: {type(e).__name__}: {str(e)[:300]} -> {findings / name}",
                          flush=True)

    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input)
    atheris.Fuzz()


# -- the driver ----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loaders", default=",".join(LOADERS))
    parser.add_argument("--seconds", type=int, default=60, help="fuzzing time per loader")
    parser.add_argument("--runs", type=int, default=-1, help="inputs per loader (-1: until --seconds)")
    parser.add_argument("--findings", default="fuzz-findings", help="folder for inputs that broke the property")
    parser.add_argument("--work", default=None, help="folder for the seed run and corpora (default: a temp dir)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    findings = Path(args.findings).resolve()
    findings.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="vaekit-atheris-")).resolve()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.child:
        return fuzz_one(args.child, work / "run", findings, rest)
    run = make_run(work)
    rows = []
    for loader in args.loaders.split(","):
        if loader not in LOADERS:
            parser.error(f"unknown loader {loader!r}; choose from {', '.join(LOADERS)}")
        corpus = work / f"corpus-{loader}"
        corpus.mkdir(exist_ok=True)
        for i, seed in enumerate(seeds(loader, run)):
            (corpus / f"seed-{i}").write_bytes(seed)
        cmd = [sys.executable, __file__, "--child", loader, "--work", str(work), "--findings", str(findings),
               str(corpus), f"-max_total_time={args.seconds}", f"-runs={args.runs}", "-timeout=10",
               "-rss_limit_mb=2048", "-print_final_stats=1", f"-artifact_prefix={findings}/{loader}-"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        out = done.stdout + done.stderr
        (work / f"log-{loader}.txt").write_text(out)  # libFuzzer's own report, for a closer look
        execs = re.findall(r"stat::number_of_executed_units: (\d+)", out)
        found = [line for line in out.splitlines() if line.startswith("FINDING")]
        crash = [line for line in out.splitlines() if "ERROR: libFuzzer" in line or "Uncaught Python" in line]
        rows.append((loader, int(execs[-1]) if execs else 0, len(found) + len(crash), done.returncode))
        for line in found + crash:
            print(line, flush=True)
        if done.returncode and not found + crash:
            print(out[-2000:], flush=True)
        print(f"{loader}: {rows[-1][1]} executions, {rows[-1][2]} findings (exit {done.returncode})", flush=True)
    print("\n| loader | executions | findings |\n|---|---|---|")
    for loader, execs, count, _ in rows:
        print(f"| {loader} | {execs} | {count} |")


if __name__ == "__main__":
    main()
