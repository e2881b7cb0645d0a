"""The Python API: ``vaekit.train``, ``vaekit.load``, ``vaekit.open_run``, ``vaekit.fit_sampler`` and
``vaekit.load_sampler``."""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Iterable, Optional

import torch
from torch import nn

from .. import malloc, rundir
from ..config import Part, RunConfig
from ..data import load_data
from ..data.torch_dataset import is_torch_dataset, source_label
from ..data.types import DataInfo
from ..distributions import default_likelihood
from ..distributions.counts import require_count_likelihood, wants_counts
from ..errors import VaekitError
from ..interop.diffusers import IMPORTED, fine_tune_config, imported_weights
from ..models import Model, build_model
from ..models.load import data_info, load
from ..paths import inside, safe_name
from ..registry import LIKELIHOODS, accepted_args
from ..run import Run, open_run
from ..train import Trainer
from ..train.validation import eval_context
from ..train.distributed import setup as join_processes
from .card import write_card
from .summary import collapse_warning
from .options import RESUME_OPTIONS, apply_options, base_config, image_options
from .sampling import fit_sampler, load_sampler  # samplers fitted after training

__all__ = ["train", "train_run", "load", "open_run", "fit_sampler", "load_sampler"]


def train(data=None, **kwargs) -> Model:
    """Train a VAE and return it (the model); everything is saved in the run directory ``out``.

    The arguments are those of :func:`train_run`, which returns the run's handle instead
    (``vaekit.open_run(out)`` opens it later).

    >>> model = vaekit.train("digits", recipe="mlp", epochs=5, out="runs/digits")  # doctest: +SKIP
    """
    return train_run(data, **kwargs).model


def train_run(data=None, *, recipe: Optional[str] = None, out=None, resume: bool = False,
              overwrite: bool = False, encoder: Optional[nn.Module] = None, decoder: Optional[nn.Module] = None,
              progress: bool = False, sets: Iterable[str] = (), keep_freed_memory: Optional[bool] = None,
              **options) -> Run:
    """Train a VAE and return the handle on its run (:class:`vaekit.run.Run`); everything is saved in
    the run directory ``out``.

    ``data``: a dataset name or path (default ``"digits"``), or a ``torch.utils.data.Dataset`` whose
    items are ``x`` or ``(x, y)`` (read into memory; the config names it ``python:CLASS`` and cannot reload it,
    so pass it again to resume, and pass data to evaluate or plot the run). ``options`` are the CLI's
    option names in snake case (``latent_dim=8``, ``beta=4``, ``epochs=10``,
    ``likelihood="gaussian"``, ``warmup=5``...). With ``resume=True`` the run in ``out``
    continues where it stopped (its saved config is used; ``epochs``, ``patience`` and
    ``device`` may change). ``encoder``/``decoder``: your own modules,
    ``encoder(x, c) -> (B, F)`` and ``decoder(z, c) -> likelihood parameters`` (``c`` is
    the one-hot label or None). ``sets``: ``["model.prior.args.components=100", ...]``, the
    CLI's ``--set``, reaching any argument of any part. Under ``torchrun`` every process calls
    this and they train together, ``batch_size`` being the global batch; only process 0 writes
    ``out`` (README, "Multi-process training").

    ``keep_freed_memory=True`` has glibc keep this process's freed memory for the next step
    (:mod:`vaekit.malloc`; the ``vaekit`` command does it by default): faster steps, a process-wide
    setting that cannot be undone. None (the default) leaves malloc alone unless the environment
    variable ``VAEKIT_KEEP_FREED_MEMORY=1`` asks for it.
    """
    dataset = data if is_torch_dataset(data) else None  # in memory: the config names it python:CLASS
    data = source_label(dataset) if dataset is not None else data
    if keep_freed_memory if keep_freed_memory is not None else malloc.requested(default=False):
        malloc.keep_freed_memory(True)
    init = imported_weights(out) if resume and out is not None and rundir.is_run(out) else None
    if init is not None:  # an imported run (vaekit import-diffusers): fine-tuned from its weights, fresh optimizer
        cfg, run_dir, state = fine_tune_config(out, dict(options, data=data), sets, recipe), Path(out), None
        resume = False
        _absolute_paths(cfg)
    elif resume:
        cfg, run_dir, state = _resume_config(out, recipe, overwrite, encoder,
                                             dict(options, data=None if dataset is not None else data), sets)
        resume = state is not None  # killed before its first checkpoint: the run starts over from its config
    else:
        cfg = apply_options(base_config(recipe), dict(options, data=data or "digits"), sets)
        _absolute_paths(cfg)
        if encoder is not None or decoder is not None:
            cfg.model.network = Part("custom")
        run_dir, state = _check_out(out, cfg, overwrite), None
    splits = load_data(dataset if dataset is not None else cfg.data.source, data_dir=cfg.data.data_dir,
                       label_column=cfg.data.label_column,
                       val_fraction=cfg.data.val_fraction, seed=cfg.train.seed,
                       info=data_info(cfg) if resume else None, stream=cfg.data.stream, **image_options(cfg),
                       covariates=cfg.data.covariates, counts=wants_counts(cfg))
    if not resume:
        _fill_from_data(cfg, splits.info)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, encoder=encoder, decoder=decoder, name=cfg.model.variant)
    if init is not None:
        rundir.load_weights(init, model)
    for name, split in (("training data", splits.train), ("validation data", splits.val)):
        for x in split.chunks():  # the whole split at once, or ~16 MB at a time when streamed
            model.check_data(x, f"{name} {cfg.data.source!r}")
    dist = join_processes(cfg.train.device, cfg.train.batch_size)  # under torchrun: this rank (else one process)
    trainer = Trainer(model, splits, cfg, run_dir, progress=progress, dist=dist)  # checks objective and device
    _preflight(trainer, model, own_networks=encoder is not None)  # optimizers, groups, one objective call
    dist.barrier()  # every rank has checked --out before rank 0 writes there
    # everything is validated: only now touch the run directory (rank 0 alone under torchrun)
    if init is not None and init.name == rundir.WEIGHTS and dist.is_writer:
        os.replace(init, run_dir / IMPORTED)  # kept: a fine-tuning killed before its first epoch starts again from it
    if not resume and rundir.is_run(run_dir) and dist.is_writer:
        for name in (rundir.WEIGHTS, rundir.BEST, rundir.RAW, rundir.STATE, rundir.METRICS, rundir.TRACKERS):
            (run_dir / name).unlink(missing_ok=True)
    if dist.is_writer:
        # a crash mid-write leaves its temp file behind: on resume, and also where the run starts over (killed
        # before its first state.pt) or where a killed first start wrote only config.json's temp file
        rundir.remove_stale_temps(run_dir)
        rundir.make_dir(run_dir)
        rundir.write_config(run_dir, cfg)
    trainer.fit(resume=resume, state=state)
    dist.close()
    model.eval()
    run = Run(run_dir, cfg, model, info=splits.info)
    run.test_data = splits.test
    if dist.is_writer:  # what `vaekit evaluate` would warn of, said at once
        run.warnings = [w for w in [collapse_warning(model, splits.val, cfg.train.objective.name,
                                                     eval_context(splits, cfg))] if w]
        write_card(run)
    return run


train.__signature__ = inspect.signature(train_run).replace(return_annotation=Model)  # its keywords, for help()


def _preflight(trainer: Trainer, model: Model, own_networks: bool) -> None:
    """Model and objective tried on two examples; a user's networks of the wrong sizes get a clear error."""
    if not own_networks:
        trainer.preflight()
        return
    seen = []
    hook = model.decoder.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    try:
        trainer.preflight()
    except RuntimeError as e:
        if not any(word in str(e) for word in ("shape", "size")):
            raise
        where = (f"your decoder is called with z of shape {seen[-1]} in the {model.name} model" if seen else
                 f"your encoder gets x of shape {(2, *model.data_shape)}")
        raise VaekitError(f"your encoder/decoder do not fit: {where} ({str(e).strip().splitlines()[0]}); "
                          "change their input sizes to match") from None
    finally:
        hook.remove()


def _resume_config(out, recipe, overwrite, encoder, options, sets):
    if out is None:
        raise VaekitError("resume needs the run directory: pass out=... (CLI: --out RUN --resume)")
    if overwrite:
        raise VaekitError("--resume continues the run in --out and --overwrite replaces it; pass one of them")
    given = sorted("--" + k.replace("_", "-") for k, v in options.items() if v is not None and k not in RESUME_OPTIONS)
    given += (["--set"] if list(sets) else []) + (["--recipe"] if recipe else [])
    if given:
        allowed = ", ".join("--" + k.replace("_", "-") for k in RESUME_OPTIONS)
        raise VaekitError(f"--resume continues the run's saved config: only {allowed} may be given, "
                          f"not {', '.join(given)}")
    cfg = rundir.read_config(out)
    if cfg.model.network.name == "custom" and encoder is None:
        raise VaekitError(f"run {out} was trained with your own encoder/decoder; pass the same modules "
                          "again: vaekit.train(out=..., resume=True, encoder=..., decoder=...)")
    cfg = apply_options(cfg, {k: v for k, v in options.items() if k in RESUME_OPTIONS})
    if not (Path(out) / rundir.STATE).exists() and (rundir.saved_epoch(out) or 0) <= 1:
        return cfg, Path(out), None  # a crash before the first state.pt: at most epoch 1 is redone
    state = rundir.load_state(Path(out) / rundir.STATE)
    done = int(state.get("epoch", 0))
    # a finished run resumed without --epochs does nothing (a job requeued after it ended, or killed while
    # plotting); with --epochs, the number must be above what is done
    if options.get("epochs") is not None and cfg.train.epochs <= done and not state.get("stopped_early"):
        raise VaekitError(f"run {out} has already trained {done} epochs; pass --epochs above {done} "
                          f"(--epochs {done + 10}, or epochs={done + 10} in Python) to train on")
    return cfg, Path(out), state


def _absolute_paths(cfg: RunConfig) -> None:
    """Save file sources as absolute paths, so the run works from any working directory."""
    from ..data.builtin import canonical_name
    from ..data.hf_datasets import DISK

    source = cfg.data.source
    if canonical_name(source) is None and Path(source).expanduser().exists():
        cfg.data.source = str(Path(source).expanduser().resolve())
    elif source.startswith(DISK) and Path(source[len(DISK):]).expanduser().exists():
        cfg.data.source = DISK + str(Path(source[len(DISK):]).expanduser().resolve())
    if cfg.data.data_dir and Path(cfg.data.data_dir).expanduser().exists():
        cfg.data.data_dir = str(Path(cfg.data.data_dir).expanduser().resolve())
    for key in ("backbone", "lin"):  # the LPIPS weights files
        value = getattr(cfg.lpips, key)
        if value and Path(value).expanduser().exists():
            setattr(cfg.lpips, key, str(Path(value).expanduser().resolve()))


def _fill_from_data(cfg: RunConfig, info: DataInfo) -> None:
    """What the model learns from the data: its shape, classes, and the default likelihood."""
    lik = cfg.model.likelihood
    if lik.name == "auto":
        lik.name = "nb" if info.counts else default_likelihood(info.kind, lik.args)
    require_count_likelihood(info, lik.name, cfg.data.source)
    if info.kind == "table" and lik.name == "bernoulli":
        raise VaekitError(f"{cfg.data.source!r} is a table, and tables are standardized (mean 0, std 1 per "
                          "column), which a bernoulli likelihood cannot model; use --likelihood gaussian")
    levels = info.extra.get("levels")
    if levels and "levels" not in lik.args and "levels" in accepted_args(LIKELIHOODS.get(lik.name)):
        lik.args["levels"] = int(levels)   # a pmf over the data's own quantization (categorical256, dlogistic)
    cfg.model.data_shape = list(info.shape)
    cfg.model.num_classes = info.num_classes
    cfg.model.covariates = {c["name"]: len(c["categories"]) for c in info.covariates} or None
    cfg.data_info = info.to_dict()


def _check_out(out, cfg: RunConfig, overwrite: bool) -> Path:
    if out is None:
        stem = Path(cfg.data.source).stem or "data"
        return rundir.new_run_dir(str(inside("runs", safe_name(f"{cfg.recipe or cfg.model.variant}-{stem}"))))
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise VaekitError(f"--out {path} is a file; choose a directory for the run")
    if rundir.is_run(path) and rundir.has_checkpoint(path) and not overwrite:
        raise VaekitError(f"--out {path} already holds a run; pass --resume to continue it, "
                          "--overwrite to replace it, or choose another --out "
                          "(in Python: resume=True, overwrite=True, out=...)")
    if path.is_dir() and not rundir.is_run(path) and any(not rundir.is_stale_temp(p) for p in path.iterdir()):
        raise VaekitError(f"--out {path} is a non-empty directory that is not a run; choose another --out")
    rundir.require_writable(path)
    return path
