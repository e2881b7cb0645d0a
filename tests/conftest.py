"""Shared fixtures: small runs trained once per test session on scikit-learn's digits."""
import contextlib
import copy
import fcntl
import functools
import io
import os
import shutil
import sys
import tempfile

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# The test models are tiny: one thread is as fast as two, and far faster when other jobs
# share the cores (a busy 2-core machine ran the suite 3-4x slower with two threads).
os.environ.setdefault("OMP_NUM_THREADS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test`: pytest-xdist workers, one per core: one thread each
    os.environ["OMP_NUM_THREADS"] = "1"    # before torch starts its pool (torch.set_num_threads in its hook below)
# vaekit's atomic writes fsync each file, for a power cut, which no test can see; they were a wait of 10-20 ms
# each, thousands of them in the suite: no-ops in the test processes (a bad descriptor still raises)
os.fsync = lambda fd: os.fstat(fd if isinstance(fd, int) else fd.fileno()) and None
# Metrics cache what they fit (fd's feature network) under the user cache: never the user's own in tests.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="vaekit-test-cache-")


def _parse_digits_once():
    """vaekit parses scikit-learn's digits from their gzipped CSV on every load (40-60 ms), and every run and
    command on digits loads them (480 times in tests/test_contract.py alone): parse once, hand out copies.
    (scikit-learn's own load_digits too, where a test calls it.)"""
    import sklearn.datasets

    from vaekit.data import builtin

    def once(parse, copy_of):
        parsed = []

        @functools.wraps(parse)
        def cached(*args, **kwargs):
            if args or kwargs:
                return parse(*args, **kwargs)
            if not parsed:
                parsed.append(parse())
            return copy_of(parsed[0])
        return cached

    sklearn.datasets.load_digits = once(sklearn.datasets.load_digits, copy.deepcopy)
    builtin._digits_table = once(builtin._digits_table, lambda table: table.copy())


def run_cli(args, capsys=None):
    """Run ``vaekit ARGS`` in-process through the real entry point; returns (exit code, stdout, stderr)."""
    from vaekit.app.cli import main

    old = sys.argv
    sys.argv = ["vaekit", *[str(a) for a in args]]
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    if capsys is None:
        return code, "", ""
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def small_parts(variant="vae", sets=(), **options):
    """(config, model) of a zoo variant built small (MLP 32, latent 4) for 8x8 digits, seeded;
    ``sets``: --set PATH=VALUE items, ``options``: vaekit.train options."""
    import torch

    from vaekit.app.options import apply_options, base_config
    from vaekit.models import build_model

    cfg = apply_options(base_config(), dict({"model": variant, "hidden": [32], "latent_dim": 4}, **options),
                        list(sets))
    cfg.model.data_shape, cfg.model.num_classes = [1, 8, 8], 10
    torch.manual_seed(0)
    return cfg, build_model(cfg.model)


def small_model(variant="vae", **options):
    """A zoo variant built small (MLP 32, latent 4) for 8x8 digits, seeded."""
    return small_parts(variant, **options)[1]


# The slowest files, slowest first (`pytest -n 2 --dist loadfile --durations=0`, summed per file): under xdist a
# file runs on one worker, and a slow one handed out last leaves the other worker idle until it ends.
SLOWEST_FILES = ("test_contract", "test_distributed", "test_kill", "test_train", "test_image_quality",
                 "test_fidelity", "test_track", "test_malloc", "test_startup", "test_live_run", "test_hostile_files",
                 "test_spatial_latents", "test_interop_diffusers", "test_serve_browser", "test_unreadable",
                 "test_nn_resnet", "test_images", "test_fuzz_loaders", "test_cli", "test_signals")


def pytest_configure(config):
    """In a process that runs tests: the digits parsed once, one torch thread under xdist. The xdist controller
    runs none, so it imports neither torch nor scikit-learn: its start (seconds) comes before every worker's."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        config.option.loadscopereorder = False  # hand files out in collection order (below), not by test count
        return
    _parse_digits_once()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Under xdist, files in the order the controller hands them out: SLOWEST_FILES first, then the others by
    their number of tests, most first (xdist's own order), each file's tests as found."""
    if not hasattr(config, "workerinput"):  # the xdist workers collect: the controller takes their order
        return
    counts = {}
    for item in items:
        counts[item.module.__name__] = counts.get(item.module.__name__, 0) + 1
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: (rank.get(item.module.__name__, len(rank)), -counts[item.module.__name__]))


def trained_once(tmp_path_factory, key: str, args: list) -> "os.PathLike":
    """A run ``vaekit train ARGS --out DIR`` trained once per test session, even under pytest-xdist, and this
    process's own copy of it (tests may write into it: evaluations, plots). Under xdist the workers share a
    folder: the first to ask trains the run under a file lock, the other waits for it and copies it."""
    workers = tmp_path_factory.getbasetemp()
    shared = (workers.parent if os.environ.get("PYTEST_XDIST_WORKER") else workers) / "trained-once"
    shared.mkdir(exist_ok=True)
    template, done = shared / key, shared / f"{key}.done"
    with open(shared / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(template, ignore_errors=True)
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code, _, _ = run_cli(["train", *args, "--no-plots", "--no-progress", "--out", template])
            assert code == 0, err.getvalue()
            done.touch()
    out = tmp_path_factory.mktemp("runs") / key
    shutil.copytree(template, out)
    return out


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory):
    """A 2-epoch MLP VAE on digits, trained through the CLI."""
    return trained_once(tmp_path_factory, "mlp", ["--recipe", "mlp", "--data", "digits", "--epochs", "2",
                                                  "--hidden", "64"])


@pytest.fixture(scope="session")
def cvae_run(tmp_path_factory):
    """A 1-epoch conditional conv VAE on digits with 3 latent dimensions."""
    return trained_once(tmp_path_factory, "cvae", ["--recipe", "cvae", "--data", "digits", "--epochs", "1",
                                                   "--widths", "8,16", "--latent-dim", "3"])


# -- zoo variants made small: test_contract.py's end-to-end rows and the per-variant files ------------
LATENT_DIM = 4
# small sizes per network family (options of vaekit.train); an unknown family keeps its defaults
NETWORK_SMALL = {"mlp": {"hidden": [32]}, "conv": {"widths": [8, 16], "dense": 16},
                 "resnet": {"widths": [8, 16], "blocks": 1, "dense": 16}}
# per-variant speed overrides (--set PATH=VALUE); a variant not listed runs with its defaults
SPEED = {
    "iwae": ["train.objective.args.k=5"],
    "ciwae": ["train.objective.args.k=5"],
    "miwae": ["train.objective.args.m=2", "train.objective.args.k=3"],
    "piwae": ["train.objective.args.m=2", "train.objective.args.k=3"],
    "vamp": ["model.prior.args.components=50"],
    "factorvae": ["model.structure.args.disc_layers=2", "model.structure.args.disc_hidden=64"],
    "vqvae": ["model.structure.args.codes=32", "model.structure.args.code_dim=8"],
    "vqgan": ["model.structure.args.codes=32", "model.structure.args.code_dim=8"],
    "fsq": ["model.structure.args.levels=[4,3,3,3]"],
    "rvq": ["model.structure.args.codes=16", "model.structure.args.code_dim=8", "model.structure.args.stages=2"],
    "vae-gan": ["model.structure.args.disc_widths=[8,16]"],
}


def variant_options(name: str) -> dict:
    """``vaekit.train`` options making zoo variant ``name`` small: latent dim, its network's sizes."""
    from vaekit.app.options import apply_options, base_config

    network = apply_options(base_config(), {"model": name}).model.network.name
    return {"latent_dim": LATENT_DIM, **NETWORK_SMALL.get(network, {})}


def cli_flags(options: dict) -> list:
    """``vaekit train`` flags for ``vaekit.train`` options."""
    from vaekit.app.options import BY_NAME

    flags = []
    for name, value in options.items():
        flags += [BY_NAME[name].flag, ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)]
    return flags


@pytest.fixture(scope="session")
def zoo_run(tmp_path_factory):
    """``zoo_run(NAME)``: zoo variant NAME trained for 1 epoch on digits through the CLI, small
    (:func:`variant_options`, :data:`SPEED`, batch 256), once per session (:func:`trained_once`)."""
    runs = {}

    def run(name: str):
        if name not in runs:
            sets = [a for s in SPEED.get(name, []) for a in ("--set", s)]
            runs[name] = trained_once(tmp_path_factory, f"zoo-{name}", [
                "--data", "digits", "--model", name, "--epochs", "1", "--batch-size", "256",
                *cli_flags(variant_options(name)), *sets])
        return runs[name]

    return run
