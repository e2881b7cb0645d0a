"""The ``vaekit`` command line. Each command is a thin layer over vaekit.api / vaekit.workflows."""
from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import Interrupted, VaekitError

app = typer.Typer(
    help="Train, evaluate, sample and inspect variational autoencoders.\n\n"
         "Example: vaekit train --recipe conv --data fashion-mnist --out runs/conv",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="rich",
)
out_console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # never wrap paths in messages


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"vaekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print the version and exit.")):
    """Train, evaluate, sample and inspect variational autoencoders."""


@app.command(epilog="Example: vaekit train --recipe mlp --data digits --epochs 20 --out runs/mlp-digits")
def train(
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Dataset name (digits, mnist, fashion-mnist) "
                                       "or path (.npy/.npz, image folder, .csv). Default: digits."),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="Named setup: mlp, conv, cvae, beta-vae."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default: runs/<recipe>-<data>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in --out."),
    model: Optional[str] = typer.Option(None, "--model", help="Network: mlp or conv."),
    latent_dim: Optional[int] = typer.Option(None, "--latent-dim", help="Latent dimensions."),
    hidden: Optional[str] = typer.Option(None, "--hidden", help="MLP hidden sizes, e.g. 512,256."),
    channels: Optional[str] = typer.Option(None, "--channels", help="Conv filters, e.g. 32,64."),
    dense: Optional[int] = typer.Option(None, "--dense", help="Conv dense layer width."),
    likelihood: Optional[str] = typer.Option(None, "--likelihood", help="bernoulli (cross-entropy) or gaussian "
                                             "(squared error)."),
    sigma: Optional[str] = typer.Option(None, "--sigma", help="Gaussian sigma: a number or 'learned'."),
    conditional: Optional[bool] = typer.Option(None, "--conditional/--unconditional",
                                               help="Feed the class label to encoder and decoder (CVAE)."),
    beta: Optional[float] = typer.Option(None, "--beta", help="KL weight (beta-VAE when > 1)."),
    free_bits: Optional[float] = typer.Option(None, "--free-bits", help="Minimum KL per latent dim, nats."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="KL warm-up: linear over this many epochs."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adam, adamw, rmsprop or sgd."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Examples per step."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (same seed, same machine: same numbers)."),
    grad_clip: Optional[float] = typer.Option(None, "--grad-clip", help="Clip the gradient norm to this."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Early stopping: epochs without val gain."),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="Share of training data for "
                                                 "validation (default 0.1)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where mnist/fashion-mnist IDX files are."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="CSV column holding class labels."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the plots when training ends."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
):
    """Train a VAE; writes config.json, weights, state.pt, metrics.jsonl and plots/ into the run directory."""
    from . import api
    from .plots_for_run import write_all_plots

    options = dict(model=model, latent_dim=latent_dim, hidden=hidden,
                   channels=channels, dense=dense, likelihood=likelihood, sigma=sigma,
                   conditional=conditional, beta=beta, free_bits=free_bits, warmup=warmup,
                   optimizer=optimizer, lr=lr, batch_size=batch_size, epochs=epochs, seed=seed,
                   grad_clip=grad_clip, patience=patience, val_fraction=val_fraction, data_dir=data_dir,
                   label_column=label_column, device=device)
    start = time.perf_counter()
    if resume and out is None:
        raise VaekitError("--resume needs --out RUN, the run directory to continue")
    with _interruptible(out):
        # on --resume, api.train refuses every option but --epochs, --patience and --device
        vae = api.train(data, recipe=recipe, out=out, resume=resume, overwrite=overwrite, progress=progress,
                        **options)
    err_console.print(f"trained in {time.perf_counter() - start:.1f}s -> {vae.run_dir}", highlight=False)
    if plots:
        for path in write_all_plots(vae):
            err_console.print(f"wrote {path}", highlight=False)


@contextmanager
def _interruptible(out):
    """Ctrl-C during training: say how to continue instead of printing a traceback."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; the last completed epoch is saved: continue with "
                          f"`vaekit train --out {out or 'RUN'} --resume`") from None


@app.command(epilog="Example: vaekit evaluate runs/mlp-digits --json")
def evaluate(
    run: Path = typer.Argument(..., help="Run directory."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Other data (default: the run's own)."),
    split: str = typer.Option("test", "--split", help="test, val or train."),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last or best."),
    seed: int = typer.Option(0, "--seed", help="Seed for the posterior samples."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    iw_samples: int = typer.Option(0, "--iw-samples", help="Also estimate log p(x) by importance sampling "
                                   "with K samples per example (e.g. 1000; 0: off)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
):
    """Test-set ELBO, reconstruction term and KL (and importance-sampled log p(x)), in nats per example."""
    from .workflows import evaluate_run

    result = evaluate_run(run, data, split, seed=seed, checkpoint=checkpoint, device=device, iw_samples=iw_samples)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    title = f"{result['run']}: {result['split']} split of {result['data']} ({result['n']} examples)"
    table = Table(title=escape(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    meaning = {"elbo": "evidence lower bound, nats/example (higher is better)",
               "recon": "-E_q[log p(x|z)], nats/example", "kl": "KL(q(z|x) || p(z)), nats/example",
               "mse": "squared error of the mean reconstruction, per value", "bits_per_dim": "-elbo / (D ln 2)"}
    if "log_likelihood" in result:
        meaning["log_likelihood"] = f"log p(x), importance-sampled, K={result['iw_samples']} " \
                                    f"(standard error {result['log_likelihood_se']:.3f})"
    for key, text in meaning.items():
        table.add_row(key, f"{result[key]:.4f}", escape(text))
    out_console.print(table)


@app.command(epilog="Example: vaekit sample runs/cvae-digits --label 3 --n 16 --out three.png")
def sample(
    run: Path = typer.Argument(..., help="Run directory."),
    n: int = typer.Option(64, "--n", "-n", help="How many samples."),
    label: Optional[int] = typer.Option(None, "--label", help="Class to generate (conditional VAE)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="PNG grid (default RUN/plots/samples.png)."),
    npy: Optional[str] = typer.Option(None, "--npy", help="Also/instead write the samples as .npy."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
):
    """Generate new data: decode z ~ N(0, I) into a PNG grid and/or a .npy array."""
    from .workflows import sample_run

    for path in sample_run(run, n=n, label=label, seed=seed, png=out, npy=npy):
        err_console.print(f"wrote {path}", highlight=False)


@app.command(epilog="Example: vaekit reconstruct runs/mlp-digits --n 16")
def reconstruct(
    run: Path = typer.Argument(..., help="Run directory."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Other data (default: the run's own)."),
    split: str = typer.Option("test", "--split", help="test, val or train."),
    n: int = typer.Option(16, "--n", "-n", help="How many examples."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="PNG (default RUN/plots/reconstructions.png)."),
    npy: Optional[str] = typer.Option(None, "--npy", help="Write originals and reconstructions (original units) "
                                      "to .npy files (the originals to <stem>_original.npy)."),
):
    """Originals above their reconstructions (decoded posterior means)."""
    from .workflows import reconstruct_run

    for path in reconstruct_run(run, data, split, n=n, png=out, npy=npy):
        err_console.print(f"wrote {path}", highlight=False)


@app.command(epilog="Example: vaekit encode runs/mlp-digits --data digits --out latents.csv --variance")
def encode(
    run: Path = typer.Argument(..., help="Run directory."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data to encode (default: the run's own)."),
    split: str = typer.Option("test", "--split", help="test, val or train."),
    out: str = typer.Option("latents.npy", "--out", "-o", help=".npy or .csv file."),
    variance: bool = typer.Option(False, "--variance", help="Also write posterior variances."),
):
    """Posterior means (and variances) of a dataset, to .npy or .csv."""
    from .workflows import encode_run

    for path in encode_run(run, out, data, split, variance=variance):
        err_console.print(f"wrote {path}", highlight=False)


class PlotKind(str, Enum):
    latent = "latent"
    manifold = "manifold"
    curves = "curves"


@app.command(epilog="Example: vaekit plot runs/mlp-digits latent --method tsne")
def plot(
    run: Path = typer.Argument(..., help="Run directory."),
    kind: PlotKind = typer.Argument(..., help="latent, manifold or curves."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="PNG path (default RUN/plots/<kind>.png)."),
    method: str = typer.Option("pca", "--method", help="Projection above 2 latent dims: pca or tsne."),
    split: str = typer.Option("test", "--split", help="Data split for the latent map."),
    n: int = typer.Option(15, "--n", "-n", help="Manifold grid size (n x n)."),
    label: Optional[int] = typer.Option(None, "--label", help="Class for a conditional VAE's manifold."),
):
    """Latent map coloured by class, manifold grid of decoded images, or training curves."""
    from .plots_for_run import plot_run

    err_console.print(f"wrote {plot_run(run, kind.value, out=out, method=method, split=split, n=n, label=label)}",
                      highlight=False)


@app.command(epilog="Example: vaekit demo --out runs/demo")
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory (replaced if it is a run)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the recipe's 50 epochs."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
):
    """Train the mlp recipe on digits and write every plot (under 2 minutes on 2 cores)."""
    from . import api
    from .plots_for_run import write_all_plots
    from .workflows import evaluate_run

    start = time.perf_counter()
    with _interruptible(out):
        vae = api.train("digits", recipe="mlp", out=out, overwrite=True, progress=progress, epochs=epochs)
    for path in write_all_plots(vae):
        err_console.print(f"wrote {path}", highlight=False)
    result = evaluate_run(out)
    out_console.print(f"demo done in {time.perf_counter() - start:.1f}s: test ELBO {result['elbo']:.2f} nats "
                      f"(recon {result['recon']:.2f}, KL {result['kl']:.2f}) on {result['n']} digits; "
                      f"plots in {out / 'plots'}", highlight=False)


def main() -> None:
    try:
        app()
    except VaekitError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
