"""Samplers of a run: fit one to the codes of its training data, save it in RUN/samplers/, sample from it.

The files of RUN/samplers/ are read and written by :mod:`vaekit.rundir.samplers`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .. import rundir
from ..errors import VaekitError
from ..models.helpers import posterior_moments
from ..registry import SAMPLERS
from ..run import Run, as_run, open_run
from ..samplers import Sampler, build_sampler
from ..rundir import sampler_files  # noqa: F401  (vaekit.app.sampling.sampler_files, as before)
from .options import parse_set
from .workflows import _save_npy, covariate_codes, require_suffix, run_splits


def parse_sampler_sets(sets: Sequence[str]) -> Dict[str, object]:
    """``["components=20"]`` -> {"components": 20} (values are JSON where they parse)."""
    args = {}
    for item in sets or ():
        if "=" not in str(item):
            raise VaekitError(f"--set takes ARG=VALUE for a sampler, like components=20; got {item!r}")
        key, value = parse_set(item)
        args[key] = value
    return args


def require_continuous(model) -> None:
    """One line when the model has no continuous latent space a density can be fitted to and decoded from."""
    what = "a sampler fitted to the codes (vaekit fit-sampler)"
    for capability in ("encode", "sample"):
        model.require(capability, what)
    why = model.why_not("latent_grid")
    if why:
        raise VaekitError(f"{what} does not apply to the {model.name} model: it draws points anywhere in the latent "
                          f"space, but {why.replace('its latent space', 'the latent space', 1)}")


def run_codes(run: Run) -> Dict[str, torch.Tensor]:
    """The posterior mean (model.embed) of every example of each non-empty split the run used, (N, D)
    (a latent map flattened)."""
    train, splits = run_splits(run, None, "train")
    return {name: posterior_moments(run.model, data, flat=True)[0] for name, data in
            (("train", train), ("val", splits.val), ("test", splits.test)) if len(data)}


def fit_sampler(run, sampler: str = "gmm", seed: int = 0, **args) -> Sampler:
    """Fit the sampler ``sampler`` (gmm, maf, two-stage, prior) to the training codes of ``run`` (a run
    directory or its :class:`~vaekit.run.Run`) and save it in RUN/samplers/. ``args`` are the sampler's
    options (``components=20``). Its mean score per code on each split is in ``sampler.scores``."""
    SAMPLERS.get(sampler)  # an unknown name is refused before any work
    run = as_run(run)
    model = run.model
    require_continuous(model)
    fitted = build_sampler(sampler, model.latent_dim, args)
    if fitted.needs_model:
        fitted.use(model)
    codes = run_codes(run)
    fitted.fit(codes["train"], seed=seed)
    fitted.scores = {}
    with torch.no_grad():
        for split, z in codes.items():
            try:
                fitted.scores[split] = float(fitted.score(z).mean())
            except NotImplementedError:
                break
    meta = {"args": fitted.args, "dim": fitted.dim, "seed": int(seed), "score": fitted.score_name,
            "scores": fitted.scores, "codes": {split: int(z.shape[0]) for split, z in codes.items()}}
    fitted.files = rundir.write_sampler(run.dir, sampler, meta, fitted.state_dict())
    return fitted


def load_sampler(run, sampler: str = "gmm", model=None) -> Sampler:
    """The sampler fitted with ``fit_sampler`` (``vaekit fit-sampler``) to ``run`` (a run directory or its
    :class:`~vaekit.run.Run`), ready to ``sample(n)`` or ``generate(model, n)``; refused if the run's weights
    changed since it was fitted. ``model``: the run's model when already loaded."""
    run = as_run(run)
    if model is not None:
        run = Run(run.dir, run.config, model, checkpoint=run.checkpoint)
    return run.load_sampler(sampler)


def sample_run(path, n: int = 64, label: Optional[int] = None, seed: int = 0, png: Optional[str] = None,
               npy: Optional[str] = None, sampler: str = "prior", checkpoint: str = "last",
               covariate_values: Optional[list] = None) -> list:
    """``vaekit sample RUN``: decode n draws of z to a PNG grid and/or .npy (original units).

    z comes from the model's prior, or with ``sampler`` from a sampler fitted to the run's codes
    (``vaekit fit-sampler``); the default files are then named after it. ``checkpoint``: last, best or raw.
    A model with covariates decodes as of the categories ``covariate_values`` (["batch=0"]), one for each
    of its covariates.
    """
    from ..plots import save_image_grid

    if n < 1:
        raise VaekitError(f"--n must be at least 1, got {n}")
    require_suffix(png, ".png", "--out")
    require_suffix(npy, ".npy", "--npy")
    run = open_run(path, checkpoint=checkpoint)
    model, info = run.model, run.info
    if label is not None and not model.num_classes:
        raise VaekitError("--label needs a conditional VAE (train with --model cvae)")
    if sampler == "prior":
        draw, suffix = model.sample, ""
    else:
        require_continuous(model)
        fitted = run.load_sampler(sampler)
        draw, suffix = (lambda k, c: fitted.generate(model, k, c).cpu()), f"-{sampler}"
    torch.manual_seed(seed)
    x = info.denormalize(draw(n, _condition(run, n, label, covariate_values)))
    written = []
    if png is None and npy is None:
        png = str(Path(path) / rundir.PLOTS / f"samples{suffix}.png") if info.kind == "image" else None
        npy = None if png else str(Path(path) / f"samples{suffix}.npy")
    if png:
        if info.kind != "image":
            raise VaekitError("a PNG grid needs image data; write the samples with --npy instead")
        written.append(save_image_grid(x, png, nrow=int(np.ceil(np.sqrt(n)))))
    if npy:
        written.append(_save_npy(Path(npy), x.numpy()))
    return written


def _condition(run: Run, n: int, label: Optional[int], covariate_values: Optional[list]):
    """What ``sample`` decodes with: the label, or for a model with covariates the label and the chosen
    categories packed (:func:`vaekit.data.covariates.pack`)."""
    model = run.model
    codes = covariate_codes(run, covariate_values) or {}
    if not model.covariates:
        return label
    missing = [c for c in model.covariates if c not in codes]
    if missing:
        raise VaekitError(f"this model decodes with the covariates {', '.join(model.covariates)}: choose a category "
                          f"of each, e.g. --covariate-value {missing[0]}=NAME")
    c = torch.full((n, 1 + len(model.covariates)), -1 if label is None else int(label), dtype=torch.long)
    return model.with_covariates(c, codes, n)

