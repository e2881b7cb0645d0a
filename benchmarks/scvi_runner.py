"""Both sides of benchmarks/vs_scvi.py: one training run in a fresh process, vaekit's scvi recipe
(``--side vaekit``, in vaekit's environment) or scvi-tools' SCVI (``--side scvi``, in scvi-tools' own).

    python benchmarks/scvi_runner.py --side vaekit --data d.npz --train-index i.npy --epochs 60 --warmup 30 --out o.npz
    SCVI_PYTHON benchmarks/scvi_runner.py --side scvi --data d.npz --train-index i.npy --epochs 60 --warmup 30 --out o.npz
    SCVI_PYTHON benchmarks/scvi_runner.py --make-iid d.npz --cells 2000 --genes 200

The data is an .npz of counts ``x`` (N, G), cell types ``y`` and ``batch`` codes; both sides train on the cells
of ``--train-index`` with the same architecture (one hidden layer of 128, latent 10, ZINB, batch norm, dropout
0.1 in the encoder, log(1 + x) input, the batch one-hot into encoder and decoder: scvi-tools'
``encode_covariates=True``), Adam 1e-3 (eps 0.01, weight decay 1e-6), batch 128, the KL weight rising linearly
over ``--warmup`` epochs. Each side times its own epochs; then, on the held-out cells, with ``--samples`` draws
z ~ q(z | x, batch) per cell, it scores the reconstruction log-likelihood E_q[log p(x | z, batch)] and the ELBO
E_q[log p(x | z, batch)] - KL(q || N(0, I)) (Kingma & Welling 2014, eq. 3), per cell, and writes the latent
means of all cells to ``--out``. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def make_iid(path: str, cells: int, genes: int) -> None:
    """scvi-tools' own synthetic counts (``scvi.data.synthetic_iid``: 3 labels, 2 batches), saved as .npz."""
    import scvi

    adata = scvi.data.synthetic_iid(batch_size=cells // 2, n_genes=genes, n_batches=2, n_labels=3)
    codes = lambda column: adata.obs[column].astype("category").cat.codes.to_numpy().astype(np.int64)  # noqa: E731
    np.savez(path, x=np.asarray(adata.X, dtype=np.float32), y=codes("labels"), batch=codes("batch"))


def scores(encode, decode_log_prob, x, batch, samples: int) -> tuple:
    """(recon log-likelihood, ELBO) per held-out cell, averaged: ``encode(x, batch)`` is q(z | x, batch) and
    ``decode_log_prob(z, x, batch)`` log p(x | z, batch) per cell (the observed library size read from x)."""
    with torch.no_grad():
        q = encode(x, batch)
        normal = getattr(q, "base_dist", q)  # vaekit's Independent(Normal), scvi-tools' Normal
        prior = torch.distributions.Normal(torch.zeros_like(normal.loc), torch.ones_like(normal.loc))
        kl = torch.distributions.kl_divergence(normal, prior).sum(-1)
        recon = torch.stack([decode_log_prob(q.sample(), x, batch) for _ in range(samples)]).mean(0)
    return float(recon.mean()), float((recon - kl).mean())


def run_vaekit(args, x, y, batch, train, test) -> dict:
    import vaekit
    from vaekit import rundir
    from vaekit.data.splits import TEST_FRACTION, TEST_SEED, split_indices

    keep, _ = split_indices(len(x), TEST_FRACTION, TEST_SEED, torch.from_numpy(y))  # vaekit's own test split
    assert np.array_equal(keep.numpy(), train), "--train-index must be vaekit's training split of --data"
    start = time.perf_counter()
    model = vaekit.train(args.data, recipe="scvi", covariate="batch", epochs=args.epochs, warmup=args.warmup,
                         val_fraction=0, seed=args.seed, out=f"{args.work}/run", overwrite=True, progress=False)
    total = time.perf_counter() - start
    epochs = [r["seconds"] for r in rundir.read_metrics(Path(args.work) / "run" / rundir.METRICS) if "seconds" in r]
    model.eval()
    c = lambda b: torch.stack([torch.full_like(b, -1), b], 1)  # noqa: E731  (no label, the batch)
    encode = lambda xs, b: model.encode(xs, c(b))  # noqa: E731
    log_prob = lambda z, xs, b: model.decode(z, c(b)).log_prob(xs)  # noqa: E731
    return finish(args, encode, log_prob, x, batch, test, epochs, total, model.num_parameters())


def run_scvi(args, x, y, batch, train, test) -> dict:
    import anndata
    import lightning.pytorch as pl
    import pandas as pd
    import scvi

    scvi.settings.seed = args.seed
    scvi.settings.dl_num_workers = 0
    adata = anndata.AnnData(x[train], obs=pd.DataFrame({"batch": batch[train].astype(str)}))
    scvi.model.SCVI.setup_anndata(adata, batch_key="batch")
    model = scvi.model.SCVI(adata, n_hidden=128, n_latent=10, n_layers=1, dropout_rate=0.1, gene_likelihood="zinb",
                            encode_covariates=True)
    if args.dispersion_init == "zeros":  # log theta = 0 (theta = 1) for every gene, as vaekit's nb and zinb start
        torch.nn.init.zeros_(model.module.px_r)
    epochs = []

    class EpochTimer(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            epochs.append(time.perf_counter() - self.start)

    start = time.perf_counter()
    model.train(max_epochs=args.epochs, batch_size=128, train_size=1.0, accelerator="cpu",
                plan_kwargs=kl_warmup(args, len(train)), callbacks=[EpochTimer()], enable_progress_bar=False,
                enable_model_summary=False, logger=False, enable_checkpointing=False)
    total = time.perf_counter() - start
    module = model.module.eval()

    def encode(xs, b):
        return module.inference(xs, b[:, None])["qz"]

    def log_prob(z, xs, b):
        library = torch.log(xs.sum(1, keepdim=True))
        return module.generative(z, library, b[:, None])["px"].log_prob(xs).sum(-1)

    params = sum(p.numel() for p in module.parameters())
    return finish(args, encode, log_prob, x, batch, test, epochs, total, params)


def kl_warmup(args, cells: int) -> dict:
    """scvi-tools' KL warm-up: per epoch (its ``n_epochs_kl_warmup``: the weight epoch / warmup, constant within
    an epoch, 0 all through the first), or with ``--kl-per-step`` per optimizer step as vaekit's."""
    if not args.kl_per_step:
        return {"n_epochs_kl_warmup": args.warmup}
    return {"n_epochs_kl_warmup": None, "n_steps_kl_warmup": args.warmup * -(-cells // 128)}


def finish(args, encode, log_prob, x, batch, test, epochs, total, params) -> dict:
    """Score the held-out cells, write every cell's latent mean, and say what was timed."""
    xt, bt = torch.from_numpy(x), torch.from_numpy(batch)
    torch.manual_seed(args.seed)
    recon, elbo = scores(encode, log_prob, xt[test], bt[test], args.samples)
    with torch.no_grad():
        means = torch.cat([encode(xt[i:i + 1024], bt[i:i + 1024]).mean for i in range(0, len(xt), 1024)])
    np.savez(args.out, latent=means.numpy())
    return {"epoch_seconds": epochs, "train_seconds": total, "recon_ll": recon, "elbo": elbo, "parameters": params}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", choices=["vaekit", "scvi"])
    p.add_argument("--make-iid", help="Write scvi.data.synthetic_iid counts to this .npz and stop.")
    p.add_argument("--cells", type=int, default=2000)
    p.add_argument("--genes", type=int, default=200)
    p.add_argument("--data")
    p.add_argument("--train-index")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--dispersion-init", choices=["randn", "zeros"], default="randn",
                   help="scvi-tools' log-dispersion start: its own N(0, 1) draws, or zeros as vaekit's.")
    p.add_argument("--kl-per-step", action="store_true", help="scvi-tools' KL weight rising per step, as vaekit's.")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default="/tmp")
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.make_iid:
        make_iid(args.make_iid, args.cells, args.genes)
        print(json.dumps({"wrote": args.make_iid}))
        return
    d = np.load(args.data)
    x, y, batch = d["x"].astype(np.float32), d["y"], d["batch"].astype(np.int64)
    train = np.load(args.train_index)
    test = np.setdiff1d(np.arange(len(x)), train)
    side = run_vaekit if args.side == "vaekit" else run_scvi
    print(json.dumps(side(args, x, y, batch, train, test)))


if __name__ == "__main__":
    main()
