"""The ``vaekit`` command line. Each command is a thin layer over vaekit.app.api and vaekit.app.workflows."""
from __future__ import annotations

import atexit
import functools
import gc
import inspect
import json
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import Interrupted, VaekitError
from ..malloc import keep_freed_memory
from ..recipes import recipe_names
from .options import OPTIONS

app = typer.Typer(
    help="Train, evaluate, sample and inspect variational autoencoders.\n\n"
         "Example: vaekit train --recipe conv --data fashion-mnist --out runs/conv",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
)
CHECKPOINT = typer.Option("last", "--checkpoint", help="last, best or raw: with --ema, the weights as trained "
                          "rather than their average (the same as last for a run trained without it).")
out_console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # never wrap paths in messages


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"vaekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print the version and exit.")):
    """Train, evaluate, sample and inspect variational autoencoders."""


def _train(recipe, out, resume, overwrite, plots, progress, sets, nproc, threads, **options):
    """Train a VAE; writes config.json, weights, state.pt, metrics.jsonl and plots/ into the run directory."""
    from . import api
    from .launch import check_launch, launch, without_nproc
    from ..train.distributed import writer_process

    if nproc is not None:
        check_launch(nproc, options.get("device"))
        if nproc > 1:  # torchrun runs this command once per process, without --nproc
            return launch(nproc, options.get("device"), without_nproc(sys.argv[sys.argv.index("train") + 1:]))
    start = time.perf_counter()
    if resume and out is None:
        raise VaekitError("--resume needs --out RUN, the run directory to continue")
    before = _epochs_done(out) if resume else 0
    data = options.pop("data")
    from .threads import training_threads

    with _interruptible(out), training_threads(threads) as note:
        if note:
            _note(note)
        # on --resume, api.train refuses every option but --epochs, --patience and --device
        run = api.train_run(data, recipe=recipe, out=out, resume=resume, overwrite=overwrite, progress=progress,
                            sets=sets or (), **options)
    if not writer_process():  # a torchrun rank above 0: rank 0 reports and plots
        return
    from .summary import final_line
    err_console.print(final_line(run, time.perf_counter() - start, before), highlight=False)
    for warning in run.warnings:
        err_console.print(f"warning: {warning}", highlight=False)
    if plots:
        from .plotting import write_all_plots  # matplotlib: only when plots are drawn

        _wrote(write_all_plots(run, skipped=_note))


def _train_signature() -> inspect.Signature:
    """The train command's parameters: its own, then one per entry of the option table."""
    kw = inspect.Parameter.KEYWORD_ONLY
    own = [
        ("recipe", Optional[str], typer.Option(None, "--recipe", "-r", help="Named setup with a paper's settings; "
                                               f"{len(recipe_names())} recipes, listed by `vaekit models`.")),
        ("out", Optional[Path], typer.Option(None, "--out", "-o", help="Run directory (default: "
                                             "runs/<recipe>-<data>).")),
        ("resume", bool, typer.Option(False, "--resume", metavar="", help="Continue the run in --out where it stopped.")),
        ("overwrite", bool, typer.Option(False, "--overwrite", metavar="", help="Replace the run already in --out.")),
        ("plots", bool, typer.Option(True, "--plots/--no-plots", metavar="", help="Write the plots when training ends.")),
        ("progress", bool, typer.Option(True, "--progress/--no-progress", metavar="", help="Show a progress bar.")),
        ("sets", Optional[List[str]], typer.Option(None, "--set", help="PATH=VALUE: set any config value, e.g. "
                                                   "model.prior.args.components=100 (repeatable).")),
        ("nproc", Optional[int], typer.Option(None, "--nproc", help="Train with N processes on this machine "
                                              "(torchrun; --batch-size stays the global batch).")),
        ("threads", Optional[int], typer.Option(None, "--threads", help="Compute threads (default: the free cores; "
                                                "fewer when other processes keep cores busy).")),
    ]
    params = [inspect.Parameter(name, kw, default=default, annotation=annotation) for name, annotation, default in own]
    for option in OPTIONS:
        if option.type is bool:
            name = option.flag[2:]
            decl = typer.Option(None, f"--{name}/--no-{name}", help=option.description, metavar="")
        else:
            decl = typer.Option(None, option.flag, *(["-d"] if option.name == "data" else []),
                                help=option.description)
        params.append(inspect.Parameter(option.name, kw, default=decl, annotation=Optional[option.type]))
    return inspect.Signature(params)


_train.__signature__ = _train_signature()
app.command("train", help=_train.__doc__,
            epilog="Example: vaekit train --model vamp --data digits --epochs 20 --out runs/vamp-digits")(_train)


@app.command(epilog="Example: vaekit models --json")
def models(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
           parts: bool = typer.Option(False, "--parts", metavar="", help="List the parts instead: the names "
                                      "--network, --posterior, --prior, --likelihood, --objective, --optimizer "
                                      "and --model take.")):
    """The model zoo: every variant `vaekit train --model NAME` trains, with its paper."""
    from ..recipes import load_recipe
    from ..registry import VARIANTS  # filled when vaekit is imported

    if parts:
        return _list_parts(as_json)

    by_variant = {}
    for recipe in recipe_names():
        by_variant.setdefault(load_recipe(recipe).get("model", {}).get("variant", "vae"), []).append(recipe)
    rows = [{"name": n, "description": VARIANTS.get(n).description, "paper": VARIANTS.get(n).paper,
             "recipes": by_variant.get(n, []), "config": VARIANTS.get(n).config} for n in VARIANTS.names()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="vaekit models (train one with: vaekit train --model NAME, or --recipe NAME)")
    for column in ("name", "description", "paper", "recipes"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(v) for v in (row["name"], row["description"], row["paper"],
                                            ", ".join(row["recipes"]) or "-")))
    out_console.print(table)


def _list_parts(as_json: bool) -> None:
    """Each option of the option table that takes a registered name, with the names (no torch needed)."""
    listed = {option.flag: option.choices.names() for option in OPTIONS if option.choices}
    if as_json:
        print(json.dumps(listed, indent=2))
        return
    for flag, names in listed.items():
        out_console.print(f"{flag}: {', '.join(names)}", highlight=False, soft_wrap=True)


def _epochs_done(out) -> int:
    """Epochs a run to be resumed has completed (0 where it has no metrics yet)."""
    from .. import rundir

    try:
        return max([row["epoch"] for row in rundir.read_metrics(Path(out) / rundir.METRICS)] or [0])
    except VaekitError:  # not a run: train_run says why
        return 0


def _note(message: str) -> None:
    err_console.print(message, highlight=False)


def _wrote(paths) -> None:
    for path in paths:
        err_console.print(f"wrote {path}", highlight=False)


@contextmanager
def _interruptible(out):
    """Ctrl-C or SIGTERM outside the training loop (which saves and stops by itself, train/stop.py),
    or pressed twice: say how to continue, instead of printing a traceback or dying silently."""
    def terminate(signum, frame):
        raise KeyboardInterrupt
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if in_main else None
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; the last checkpoint is kept: continue with "
                          f"`vaekit train --out {out or 'RUN'} --resume`") from None
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


@app.command(epilog="Example: vaekit evaluate runs/mlp-digits --metrics elbo,nll,au,knn --k 1000")
def evaluate(
    run: Optional[Path] = typer.Argument(None, help="Run directory."),
    metrics: str = typer.Option("default", "--metrics", "-m", help="Comma-separated metric names, all, or "
                                "default (elbo, recon, au): elbo, nll, recon, au, knn, probe, silhouette, latent, "
                                "fd, fid, disentanglement (vaekit evaluate --list explains each)."),
    k: int = typer.Option(0, "--k", "--iw-samples", help="Importance samples per example for nll (default 1000 "
                          "when nll is asked for; K > 0 alone adds nll)."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Other data (default: the run's own)."),
    split: str = typer.Option("test", "--split", help="test, val or train."),
    checkpoint: str = CHECKPOINT,
    seed: int = typer.Option(0, "--seed", help="Seed for posterior samples and fitted metrics."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    fid_weights: Optional[str] = typer.Option(None, "--fid-weights", help="Inception weights file for fid and rfid "
                                              "(pytorch-fid's pt_inception-2015-12-05-6726825d.pth)."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="A metric's option, METRIC.ARG=VALUE, e.g. "
                                             "knn.k=10; repeatable."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="JSON file the results are merged into "
                                      "(default RUN/evaluation.json)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    list_metrics: bool = typer.Option(False, "--list", help="List the metrics, what they mean and their papers."),
):
    """Every number a paper needs: likelihood, latent, sample and disentanglement metrics, as a table and JSON."""
    from .. import rundir
    from .evaluations import evaluate_run, metric_options, parse_metrics, record_evaluation, shortcut_options
    from .workflows import require_suffix

    if list_metrics:
        return _list_metrics(as_json)
    if run is None:
        raise VaekitError("vaekit evaluate needs a run directory: vaekit evaluate RUN [--metrics ...]")
    names = parse_metrics(metrics)
    options = metric_options(sets or [], fid_weights, names)
    save = out or str(run / rundir.EVALUATION)
    require_suffix(save, ".json", "--out")
    rundir.read_evaluations(save)  # a file that is not an evaluation is refused before any work
    live = rundir.training_now(run)
    result = evaluate_run(run, data, split, seed=seed, checkpoint=checkpoint, device=device, iw_samples=k,
                          metrics=names, options=options, skipped=_note)
    if live:
        _note(f"note: {run} is still training; these numbers are of its {checkpoint} weights, saved at epoch "
              f"{result['epoch']}, and are kept under that epoch")
    if "warning" in result:
        err_console.print(f"[bold yellow]warning:[/] {escape(result['warning'])}", highlight=False)
    if as_json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        _evaluation_table(result, names + shortcut_options({"--k": k})[1])
    _wrote([rundir.save_evaluation(save, result)])  # after printing: an unwritable --out loses no numbers
    from ..run import Run

    record_evaluation(Run(run), save, result)  # the model card and the experiment trackers


def _evaluation_table(result: dict, names: List[str]) -> None:
    from ..contract.keys import key_layer
    from ..evaluate import meanings

    epoch = f", {result['checkpoint']} weights of epoch {result['epoch']}" if result.get("epoch") else ""
    title = f"{result['run']}: {result['split']} split of {result['data']} ({result['n']} examples{epoch})"
    table = Table(title=escape(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    meaning = meanings(names)
    meaning.update({key: f"KL of stochastic layer {key_layer(key)} (1 = top)" for key in result
                    if key_layer(key) is not None})
    skip = {"n", "run", "data", "split", "checkpoint", "epoch", "warning", "metrics", "metrics_seed",
            "not_applicable", "why_not", "options", "weights"}
    notes = []
    for key in [key for key in result if key not in skip]:
        if isinstance(result[key], str):
            notes.append(f"{key}: {result[key]}")
        else:
            table.add_row(key, escape(_show(result[key])), escape(meaning.get(key, "")))
    table.caption = escape("\n".join(notes)) if notes else None
    out_console.print(table)


def _show(value) -> str:
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return " ".join(_show(v) for v in value[:16]) + (" ..." if len(value) > 16 else "")
    return str(value)


def _list_metrics(as_json: bool) -> None:
    from ..evaluate import metric_names
    from ..registry import METRICS

    rows = [{"name": n, "title": METRICS.get(n).title, "paper": METRICS.get(n).paper,
             "in_all": METRICS.get(n).group is None, "keys": METRICS.get(n).meanings} for n in metric_names(True)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="vaekit metrics (vaekit evaluate RUN --metrics NAME,NAME or all)")
    for column in ("name", "what", "paper"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], escape(row["title"]), escape(row["paper"] or "-"))
    out_console.print(table)


@app.command(epilog="Example: vaekit compare runs/mlp runs/iwae --metrics elbo,nll")
def compare(
    runs: List[Path] = typer.Argument(..., help="Run directories."),
    metrics: str = typer.Option("elbo", "--metrics", "-m", help="Comma-separated metric names, or all."),
    k: int = typer.Option(0, "--k", "--iw-samples", help="Importance samples for nll."),
    split: str = typer.Option("test", "--split", help="test, val or train."),
    checkpoint: str = CHECKPOINT,
    seed: int = typer.Option(0, "--seed", help="Seed, the same for every run."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
):
    """Several runs side by side: saved evaluations are reused, missing metrics are computed (and saved)."""
    from .evaluations import compare_runs, parse_metrics

    from .compare_table import tables

    rows, keys = compare_runs(runs, parse_metrics(metrics), split=split, checkpoint=checkpoint, seed=seed,
                              iw_samples=k)
    if as_json:
        print(json.dumps(rows, indent=2, allow_nan=False))
        return
    shown, notes = tables(rows, keys, f"{split} split, {checkpoint} checkpoint", out_console.width, _show)
    for table in shown:
        out_console.print(table)
    for note in notes:
        out_console.print(note, highlight=False, soft_wrap=True)


@app.command(epilog="Example: vaekit sample runs/cvae-digits --label 3 --n 16 --out three.png")
def sample(
    run: Path = typer.Argument(..., help="Run directory."),
    n: int = typer.Option(64, "--n", "-n", help="How many samples."),
    label: Optional[int] = typer.Option(None, "--label", help="Class to generate (conditional VAE)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="PNG grid (default RUN/plots/samples.png), or a "
                                      ".npy file for the array."),
    npy: Optional[str] = typer.Option(None, "--npy", help="Also/instead write the samples as .npy."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    sampler: str = typer.Option("prior", "--sampler", help="Where z comes from: prior (the model's own), or a "
                                "sampler fitted with `vaekit fit-sampler` (gmm, maf, two-stage)."),
    checkpoint: str = CHECKPOINT,
    covariate_value: Optional[List[str]] = typer.Option(None, "--covariate-value", help="A model with covariates: "
                                                        "decode as of this category, e.g. batch=0 (one per covariate)."),
):
    """Generate new data: decode draws from the model's prior (or a fitted sampler) into a PNG grid and/or .npy."""
    from .sampling import sample_run

    if out and Path(out).suffix.lower() == ".npy" and npy is None:
        out, npy = None, out  # --out samples.npy writes the array
    _wrote(sample_run(run, n=n, label=label, seed=seed, png=out, npy=npy, sampler=sampler,
                      checkpoint=checkpoint, covariate_values=covariate_value))


@app.command("fit-sampler", epilog="Example: vaekit fit-sampler runs/rae-digits --sampler gmm --set components=20")
def fit_sampler(
    run: Path = typer.Argument(..., help="Run directory."),
    sampler: str = typer.Option("gmm", "--sampler", help="gmm, maf, two-stage or prior (the model's own)."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="ARG=VALUE: an option of the sampler, e.g. "
                                             "components=20 (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fit."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
):
    """Fit a density to the codes of the run's training data (ex-post density estimation); saved in RUN/samplers/."""
    from .sampling import fit_sampler as fit, parse_sampler_sets

    fitted = fit(run, sampler, seed=seed, **parse_sampler_sets(sets or []))
    if as_json:
        print(json.dumps({"sampler": sampler, "args": fitted.args, "score": fitted.score_name,
                          "scores": fitted.scores}, indent=2))
    else:
        scores = ", ".join(f"{split} {value:.3f}" for split, value in fitted.scores.items()) or "not available"
        print(f"{sampler} sampler: mean {fitted.score_name} per code (nats): {scores}")
    _wrote(fitted.files)


@app.command(epilog="Example: vaekit reconstruct runs/mlp-digits --n 16")
def reconstruct(
    run: Path = typer.Argument(..., help="Run directory."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Other data (default: the run's own)."),
    split: str = typer.Option("test", "--split", help="test, val or train."),
    n: int = typer.Option(16, "--n", "-n", help="How many examples."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="PNG (default RUN/plots/reconstructions.png)."),
    npy: Optional[str] = typer.Option(None, "--npy", help="Write originals and reconstructions (original units) "
                                      "to .npy files (the originals to <stem>_original.npy)."),
    checkpoint: str = CHECKPOINT,
    covariate_value: Optional[List[str]] = typer.Option(None, "--covariate-value", help="Decode every example "
                                                        "as of this category, e.g. batch=0 (--npy): counterfactuals."),
):
    """Originals above their reconstructions (decoded posterior means)."""
    from .workflows import reconstruct_run

    _wrote(reconstruct_run(run, data, split, n=n, png=out, npy=npy, checkpoint=checkpoint,
                           covariate_values=covariate_value))


@app.command(epilog="Example: vaekit encode runs/mlp-digits --data digits --out latents.csv --variance")
def encode(
    run: Path = typer.Argument(..., help="Run directory."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data to encode (default: the run's own)."),
    split: str = typer.Option("test", "--split", help="test, val or train."),
    out: str = typer.Option("latents.npy", "--out", "-o", help=".npy or .csv file."),
    variance: bool = typer.Option(False, "--variance", help="Also write posterior variances."),
    checkpoint: str = CHECKPOINT,
    covariate_value: Optional[List[str]] = typer.Option(None, "--covariate-value", help="Encode every example "
                                                        "as of this category, e.g. batch=0: batch-corrected codes."),
):
    """Posterior means (and variances) of a dataset, to .npy or .csv."""
    from ..run import as_run
    from .workflows import encode_run

    _wrote(encode_run(as_run(run, checkpoint), out, data, split, variance=variance,
                      covariate_values=covariate_value))


@app.command(epilog="Example: vaekit plot runs/mlp-digits latent --method tsne")
def plot(
    run: Path = typer.Argument(..., help="Run directory."),
    kind: str = typer.Argument(..., help="latent, manifold, curves, samples, reconstructions, traversal "
                               "or interpolation."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="PNG path (default RUN/plots/<kind>.png)."),
    method: str = typer.Option("pca", "--method", help="Projection above 2 latent dims: pca or tsne."),
    split: str = typer.Option("test", "--split", help="Data split for the latent map."),
    n: int = typer.Option(15, "--n", "-n", help="Manifold grid size (n x n); steps per row for "
                   "traversal and interpolation."),
    label: Optional[int] = typer.Option(None, "--label", help="Class for a conditional VAE's manifold, "
                                         "traversal or interpolation."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Other data (default: the run's own)."),
    checkpoint: str = CHECKPOINT,
):
    """Latent map by class, manifold grid, latent traversals and interpolations, samples, or training curves."""
    from ..run import as_run
    from .plotting import plot_run

    path = plot_run(as_run(run, checkpoint), kind, out=out, method=method, split=split, n=n, label=label, source=data)
    err_console.print(f"wrote {path}", highlight=False)


@app.command(epilog="Example: vaekit report runs/mlp runs/iwae --out report.html")
def report(
    runs: List[Path] = typer.Argument(..., help="Run directories (several: compared side by side)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="HTML file (default report.html)."),
):
    """One self-contained HTML report that opens offline: config, numbers, curves, pictures and the latent map."""
    from ..report import write_report

    path = write_report(runs, out)
    err_console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", highlight=False)


@app.command(epilog="Example: vaekit export runs/mlp-digits --format onnx --out mlp-onnx")
def export(
    run: Path = typer.Argument(..., help="Run directory."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to write (default RUN/export-FORMAT)."),
    fmt: str = typer.Option("diffusers", "--format", help="onnx, torchscript or exported-program: the encoder and "
                            "decoder as graphs, with export.json; diffusers: a folder AutoencoderKL.from_pretrained "
                            "loads."),
):
    """Write a run's encoder and decoder as ONNX, TorchScript or torch.export graphs (checked against the model),
    or its model in diffusers' AutoencoderKL format (a resnet with a latent map)."""
    out = out if out is not None else run / f"export-{fmt}"
    if fmt == "diffusers":
        from ..interop.diffusers import export_diffusers

        _wrote([export_diffusers(run, out)])
        return
    from ..export.writers import export_run

    _wrote([export_run(run, fmt, out)])


@app.command(epilog="Example: vaekit push runs/digits my-org/vae-digits")
def push(
    run: Path = typer.Argument(..., help="Run directory."),
    repo: str = typer.Argument(..., help="Hub repository ORG/NAME (made if missing)."),
    with_state: bool = typer.Option(False, "--with-state", metavar="", help="Also send state.pt (for --resume)."),
    private: bool = typer.Option(False, "--private", metavar="", help="Make a new repository private."),
    token: Optional[str] = typer.Option(None, "--token", help="Hub token (default: huggingface-cli login's)."),
):
    """Upload a run to the Hugging Face Hub: weights, config, model card, numbers and plots; load it back
    with vaekit.open_run("hf://ORG/NAME")."""
    from .. import rundir
    from ..hub import push as upload, push_files
    from .card import write_card
    from ..run import Run

    write_card(Run(rundir.require_run(run)))  # the card says what the run holds now
    files = push_files(run, with_state)
    url = upload(run, repo, with_state=with_state, private=private, token=token)
    out_console.print(f"pushed {len(files)} files ({', '.join(files)}) -> {url}", highlight=False)


@app.command("import-diffusers", epilog="Example: vaekit import-diffusers kl-diffusers --out runs/kl --image-size 64")
def import_diffusers(
    folder: Path = typer.Argument(..., help="A diffusers AutoencoderKL folder (save_pretrained's)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to make."),
    image_size: Optional[str] = typer.Option(None, "--image-size", help="S or HxW, a multiple of the model's "
                                             "down-sampling factor (default: its sample_size)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run in --out."),
):
    """Make a run from a diffusers AutoencoderKL: evaluate, encode, plot it, or fine-tune it with
    `vaekit train --out RUN --resume --data DATA` (from its weights, with a fresh optimizer)."""
    from ..interop.diffusers import import_diffusers as convert, parse_image_size

    convert(folder, out, image_size=parse_image_size(image_size), overwrite=overwrite)
    _wrote([out])


@app.command(epilog="Example: vaekit serve runs/mlp-digits --port 8000")
def serve(
    run: Path = typer.Argument(..., help="Run directory."),
    port: int = typer.Option(8000, "--port", help="TCP port (0: any free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; another than 127.0.0.1 lets other "
                             "machines in, and is warned about."),
    token: Optional[str] = typer.Option(None, "--token", help="Require 'Authorization: Bearer TOKEN' on every "
                                        "request (the page reads it from the URL's #token=)."),
    batching: bool = typer.Option(True, "--batching/--no-batching", help="Answer concurrent requests with one "
                                  "forward pass."),
    batch_wait: float = typer.Option(0.0, "--batch-wait", help="Milliseconds a forward pass waits for more "
                                     "requests (0: it takes those that queued while the last one ran)."),
    threads: int = typer.Option(1, "--threads", help="Compute threads per forward pass (one leaves a core to the "
                                "web server)."),
    onnx: bool = typer.Option(False, "--onnx", metavar="", help="RUN is a folder of `vaekit export --format onnx`: "
                              "served by onnxruntime, without torch."),
):
    """A local web app: the latent explorer at / and a JSON API (/info, /encode, /decode, /sample, /reconstruct)."""
    from ..serve.server import serve as run_server

    run_server(run, host=host, port=port, token=token, batching=batching, wait_ms=batch_wait,
               threads=threads, onnx=onnx)


@app.command(epilog="Example: vaekit demo --out runs/demo")
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory (replaced if it is a run)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the recipe's 50 epochs."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
):
    """Train the mlp recipe on digits and write every plot (under 2 minutes on 2 cores)."""
    from . import api
    from .plotting import write_all_plots
    from .evaluations import evaluate_run

    start = time.perf_counter()
    with _interruptible(out):
        run = api.train_run("digits", recipe="mlp", out=out, overwrite=True, progress=progress, epochs=epochs)
    _wrote(write_all_plots(run, skipped=_note))
    result = evaluate_run(out)
    out_console.print(f"demo done in {time.perf_counter() - start:.1f}s: test ELBO {result['elbo']:.2f} nats "
                      f"(recon {result['recon']:.2f}, KL {result['kl']:.2f}) on {result['n']} digits; "
                      f"plots in {out / 'plots'}", highlight=False)


def _usage_error(e: typer.TyperException) -> None:
    """Say click's usage errors (an unknown option, a missing argument, a bad value) the way vaekit says its
    own: ``error: ...`` first, then the usage line; exit 2. click itself would print ``Error: ...``."""
    if type(e).__name__ == "NoArgsIsHelpError":  # bare `vaekit` or a bare group: click's help text, as before
        e.show()
        sys.exit(e.exit_code)
    message = e.format_message()
    if message[:1].isupper() and message[1:2].islower():  # "No such option" -> "no such option", not "JSON"
        message = message[0].lower() + message[1:]
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    ctx = getattr(e, "ctx", None)
    if ctx is not None:
        usage = ctx.get_usage().removeprefix("Usage: ")
        err_console.print(escape(f"usage: {usage} (see: {ctx.command_path} --help)"), highlight=False)
    sys.exit(e.exit_code)


@functools.lru_cache(maxsize=None)
def _command():
    """The click command typer builds from ``app``, built once per process: ``app()`` would rebuild it on every
    call, reading every command's signature and annotations (most of a quick command's time in a process that
    runs several, as a notebook or the tests do). Its exceptions reach Python's own hook either way, since
    ``app`` has typer's pretty exceptions off."""
    return typer.main.get_command(app)


@functools.lru_cache(maxsize=None)
def _no_last_collection() -> None:
    """At the process's exit, freeze every object out of the cyclic collector's reach: the interpreter's last
    collections walk what torch and its compiler stack built at import (a second or more of CPU at every exit of
    a command that trained) to free memory the ending process gives back anyway. Registered once: a caller that
    runs commands in its own process (the tests, a notebook) collects as before until it exits."""
    atexit.register(gc.freeze)


def main() -> None:
    keep_freed_memory()  # every command: training and evaluation reuse their freed activations
    _no_last_collection()
    try:
        # standalone_mode=False: click raises its usage errors to us instead of printing "Error: ..." itself
        code = _command()(standalone_mode=False, prog_name="vaekit")
    except typer.Abort:  # click's Ctrl-D at a prompt
        err_console.print("[bold yellow]stopped:[/] aborted", highlight=False)
        sys.exit(1)
    except typer.TyperException as e:  # click's ClickException: usage errors and bad parameter values
        _usage_error(e)
    except VaekitError as e:
        from ..train.distributed import process_label, writer_process  # under torchrun, which process says it

        if isinstance(e, Interrupted) and not writer_process():
            sys.exit(e.exit_code)  # every process stopped at the same step; process 0 says so
        label = "[bold yellow]stopped" if isinstance(e, Interrupted) else "[bold red]error"
        err_console.print(f"{label}{process_label()}:[/] {escape(str(e))}", highlight=False)  # a [word] is text
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)  # typer.Exit's code, or 0 when a command returns


if __name__ == "__main__":
    main()
