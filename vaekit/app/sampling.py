"""Samplers of a run: fit one to the codes of its training data, save it in RUN/samplers/, sample from it.

``RUN/samplers/NAME.safetensors`` holds the sampler's tensors and ``RUN/samplers/NAME.json`` its
name, args, seed, the fingerprint of the weights it was fitted to and its scores; the JSON is
written last, so its presence means the sampler is complete.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import rundir
from .. import samplers as _samplers  # noqa: F401  (registers the samplers)
from ..errors import VaekitError
from ..models.helpers import posterior_moments
from ..models.load import load
from ..registry import SAMPLERS, accepted_args
from ..samplers.base import Sampler
from .evaluations import weights_fingerprint
from .options import parse_set
from .workflows import _save_npy, require_suffix, run_splits

DIR, FORMAT = "samplers", 1


def sampler_files(run, name: str) -> Tuple[Path, Path]:
    """(RUN/samplers/NAME.json, RUN/samplers/NAME.safetensors)."""
    base = Path(run) / DIR
    return base / f"{name}.json", base / f"{name}.safetensors"


def parse_sampler_sets(sets: Sequence[str]) -> Dict[str, object]:
    """``["components=20"]`` -> {"components": 20} (values are JSON where they parse)."""
    args = {}
    for item in sets or ():
        if "=" not in str(item):
            raise VaekitError(f"--set takes ARG=VALUE for a sampler, like components=20; got {item!r}")
        key, value = parse_set(item)
        args[key] = value
    return args


def build_sampler(name: str, dim: int, args: Optional[dict] = None) -> Sampler:
    """``SAMPLERS[name](dim, **args)`` with the args checked; the full args (defaults filled in) are kept."""
    args = dict(args or {})
    defaults = {k: p.default for k, p in accepted_args(SAMPLERS.get(name)).items() if p.default is not p.empty}
    sampler = SAMPLERS.build(name, args, dim, where="the sampler")
    sampler.name, sampler.args = name, dict(defaults, **args)
    return sampler


def _model(run):
    """(model, run directory) from a run directory or a trained/loaded model."""
    if isinstance(run, torch.nn.Module):
        if getattr(run, "run_dir", None) is None:
            raise VaekitError("this model has no run directory; train it with vaekit.train(out=...) or load one")
        return run, Path(run.run_dir)
    return load(run), Path(run)


def require_continuous(model) -> None:
    """One line when the model has no continuous latent space a density can be fitted to and decoded from."""
    what = "a sampler fitted to the codes (vaekit fit-sampler)"
    for capability in ("encode", "sample"):
        model.require(capability, what)
    why = model.why_not("latent_grid")
    if why:
        raise VaekitError(f"{what} does not apply to the {model.name} model: it draws points anywhere in the latent "
                          f"space, but {why.replace('its latent space', 'the latent space', 1)}")


def run_codes(model) -> Dict[str, torch.Tensor]:
    """The posterior mean (model.embed) of every example of each non-empty split the run used, (N, D)."""
    train, splits = run_splits(model, None, "train")
    return {name: posterior_moments(model, data)[0] for name, data in
            (("train", train), ("val", splits.val), ("test", splits.test)) if len(data)}


def fit_sampler(run, sampler: str = "gmm", seed: int = 0, **args) -> Sampler:
    """Fit the sampler ``sampler`` (gmm, maf, two-stage, prior) to the training codes of ``run`` (a run
    directory or a model with one) and save it in RUN/samplers/. ``args`` are the sampler's options
    (``components=20``). Its mean score per code on each split is in ``sampler.scores``."""
    SAMPLERS.get(sampler)  # an unknown name is refused before any work
    model, path = _model(run)
    require_continuous(model)
    fitted = build_sampler(sampler, model.latent_dim, args)
    if fitted.needs_model:
        fitted.use(model)
    codes = run_codes(model)
    fitted.fit(codes["train"], seed=seed)
    fitted.scores = {}
    with torch.no_grad():
        for split, z in codes.items():
            try:
                fitted.scores[split] = float(fitted.score(z).mean())
            except NotImplementedError:
                break
    meta = {"format": FORMAT, "sampler": sampler, "args": fitted.args, "dim": fitted.dim, "seed": int(seed),
            "weights": weights_fingerprint(path, "last"), "score": fitted.score_name, "scores": fitted.scores,
            "codes": {split: int(z.shape[0]) for split, z in codes.items()}}
    meta_path, tensors = sampler_files(path, sampler)
    state = {k: v.detach().cpu().contiguous() for k, v in fitted.state_dict().items()}
    rundir.atomic_write(tensors, lambda tmp: save_file(state, tmp, metadata={"sampler": sampler}))
    rundir.write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    fitted.files = [tensors, meta_path]
    return fitted


def load_sampler(run, sampler: str = "gmm", model=None) -> Sampler:
    """The sampler fitted with ``fit_sampler`` (``vaekit fit-sampler``), ready to ``sample(n)`` or
    ``generate(model, n)``; refused if the run's weights changed since it was fitted."""
    SAMPLERS.get(sampler)
    model, path = _model(model if model is not None else run)
    meta_path, tensors = sampler_files(path, sampler)
    if sampler == "prior" and not meta_path.is_file():
        return build_sampler("prior", model.latent_dim).use(model)
    if not meta_path.is_file():
        raise VaekitError(f"run {path} has no fitted {sampler} sampler; fit it first with "
                          f"`vaekit fit-sampler {path} --sampler {sampler}`")
    again = f"fit it again with `vaekit fit-sampler {path} --sampler {sampler}`"
    meta = rundir.read_json(meta_path, "sampler file")
    if not isinstance(meta, dict) or not isinstance(meta.get("args", {}), dict):
        raise VaekitError(f"sampler file {meta_path} is not a JSON object with the sampler's args; it may be "
                          f"corrupted: {again}")
    if meta.get("weights") != weights_fingerprint(path, "last"):
        raise VaekitError(f"the {sampler} sampler in {meta_path.parent} was fitted to other weights than the "
                          f"run's {rundir.WEIGHTS} holds now (the run was trained again); {again}")
    if type(meta.get("dim")) is not int or meta["dim"] != model.latent_dim:
        raise VaekitError(f"sampler file {meta_path} is for {meta.get('dim')!r}-dimensional codes but the run's "
                          f"model has {model.latent_dim} latent dimensions; it may be corrupted: {again}")
    state = _read_state(tensors, again)
    args = meta.get("args", {})
    _check_size_args(sampler, args, state, meta_path, again)
    try:
        with torch.device("meta"):  # the shapes these args give, before any memory is spent on them
            built = build_sampler(sampler, meta["dim"], args)
    except VaekitError as e:
        raise VaekitError(f"sampler file {meta_path} has args vaekit refuses ({e}); it may be corrupted: "
                          f"{again}") from None
    shapes = {k: (tuple(v.shape), v.dtype) for k, v in built.state_dict().items()}
    saved = {k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    if shapes != saved:
        wrong = sorted(set(shapes.items()) ^ set(saved.items()), key=str)[:2]
        raise VaekitError(f"{tensors} does not hold the tensors the args in {meta_path.name} give (differs at "
                          f"{', '.join(f'{k} {s} {t}' for k, (s, t) in wrong)}); the files may be damaged or "
                          f"mixed: {again}")
    fitted = build_sampler(sampler, meta["dim"], args)
    fitted.load_state_dict(state, strict=True)
    scores = meta.get("scores", {})
    fitted.scores = scores if isinstance(scores, dict) else {}
    return fitted.use(model) if fitted.needs_model else fitted


def _read_state(tensors: Path, again: str) -> Dict[str, torch.Tensor]:
    """The tensors of a sampler's .safetensors file (their sizes are checked against the file by safetensors)."""
    try:
        open(tensors, "rb").close()  # safetensors says "No such file" for a file it may not read
        return load_file(str(tensors))
    except PermissionError:
        raise rundir.unreadable(tensors, "sampler weights") from None
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise VaekitError(f"{tensors} is missing or damaged ({str(e).splitlines()[0]}); {again}") from None


def _check_size_args(sampler: str, args: dict, state: dict, meta_path: Path, again: str) -> None:
    """The args that set the sampler's size are no larger than its saved tensors can hold (so a damaged
    JSON cannot make vaekit build a huge sampler): each adds at least one tensor (count_args) or one
    number (width_args)."""
    cls = SAMPLERS.get(sampler)
    limits = {**{k: len(state) for k in cls.count_args}, **{k: sum(v.numel() for v in state.values())
                                                           for k in cls.width_args}}
    for key, limit in limits.items():
        value = args.get(key)
        if type(value) is int and value > limit:  # other types are refused as the sampler is built
            raise VaekitError(f"sampler file {meta_path} gives {key}={value!r}, more than its weights file holds "
                              f"({limit}); it may be corrupted: {again}")


def sample_run(path, n: int = 64, label: Optional[int] = None, seed: int = 0, png: Optional[str] = None,
               npy: Optional[str] = None, sampler: str = "prior") -> list:
    """``vaekit sample RUN``: decode n draws of z to a PNG grid and/or .npy (original units).

    z comes from the model's prior, or with ``sampler`` from a sampler fitted to the run's codes
    (``vaekit fit-sampler``); the default files are then named after it.
    """
    from ..plots import save_image_grid

    if n < 1:
        raise VaekitError(f"--n must be at least 1, got {n}")
    require_suffix(png, ".png", "--out")
    require_suffix(npy, ".npy", "--npy")
    model = load(path)
    if label is not None and not model.num_classes:
        raise VaekitError("--label needs a conditional VAE (train with --model cvae)")
    if sampler == "prior":
        draw, suffix = model.sample, ""
    else:
        require_continuous(model)
        fitted = load_sampler(path, sampler, model=model)
        draw, suffix = (lambda k, c: fitted.generate(model, k, c).cpu()), f"-{sampler}"
    torch.manual_seed(seed)
    x = model.info.denormalize(draw(n, label))
    written = []
    if png is None and npy is None:
        png = str(Path(path) / rundir.PLOTS / f"samples{suffix}.png") if model.info.kind == "image" else None
        npy = None if png else str(Path(path) / f"samples{suffix}.npy")
    if png:
        if model.info.kind != "image":
            raise VaekitError("a PNG grid needs image data; write the samples with --npy instead")
        written.append(save_image_grid(x, png, nrow=int(np.ceil(np.sqrt(n)))))
    if npy:
        written.append(_save_npy(Path(npy), x.numpy()))
    return written
