"""RUN/samplers/: densities fitted to a run's codes (``vaekit fit-sampler``).

``NAME.safetensors`` holds the sampler's tensors and ``NAME.json`` its name, args, latent
dimension, seed, the fingerprint of the weights it was fitted to and its scores. The JSON is
written last, so its presence means the sampler is complete. Reading checks both files
against each other before any memory is spent on them: a damaged or mixed pair is refused
with the command that fits it again.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import VaekitError
from ..registry import SAMPLERS
from .files import SAMPLERS as DIR, WEIGHTS, atomic_write, read_json, unreadable, weights_fingerprint, write_text

FORMAT = 1


def sampler_files(run, name: str) -> Tuple[Path, Path]:
    """(RUN/samplers/NAME.json, RUN/samplers/NAME.safetensors)."""
    base = Path(run) / DIR
    return base / f"{name}.json", base / f"{name}.safetensors"


def fitted_samplers(run) -> List[str]:
    """The names of the samplers fitted to ``run`` (those whose JSON, written last, is there)."""
    folder = Path(run) / DIR
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def write_sampler(run, name: str, meta: dict, state: Dict[str, torch.Tensor]) -> List[Path]:
    """Save a fitted sampler: its tensors, then its JSON (``meta`` plus the format and the weights'
    fingerprint), each atomically. Returns the two paths."""
    meta_path, tensors = sampler_files(run, name)
    meta = {"format": FORMAT, "sampler": name, **meta, "weights": weights_fingerprint(run, "last")}
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic_write(tensors, lambda tmp: save_file(state, tmp, metadata={"sampler": name}))
    write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    return [tensors, meta_path]


def read_sampler(run, name: str, latent_dim: int, build: Callable[[int, dict], torch.nn.Module]):
    """The sampler ``name`` fitted to ``run``, built by ``build(dim, args)`` with its saved tensors loaded
    and its ``scores`` set. Refused when the run's weights changed since it was fitted, or when the
    files are damaged, mixed, or for another latent size than ``latent_dim``."""
    meta_path, tensors = sampler_files(run, name)
    if not meta_path.is_file():
        raise VaekitError(f"run {run} has no fitted {name} sampler; fit it first with "
                          f"`vaekit fit-sampler {run} --sampler {name}`")
    again = f"fit it again with `vaekit fit-sampler {run} --sampler {name}`"
    meta = read_json(meta_path, "sampler file")
    if not isinstance(meta, dict) or not isinstance(meta.get("args", {}), dict):
        raise VaekitError(f"sampler file {meta_path} is not a JSON object with the sampler's args; it may be "
                          f"corrupted: {again}")
    if meta.get("weights") != weights_fingerprint(run, "last"):
        raise VaekitError(f"the {name} sampler in {meta_path.parent} was fitted to other weights than the "
                          f"run's {WEIGHTS} holds now (the run was trained again); {again}")
    if type(meta.get("dim")) is not int or meta["dim"] != latent_dim:
        raise VaekitError(f"sampler file {meta_path} is for {meta.get('dim')!r}-dimensional codes but the run's "
                          f"model has {latent_dim} latent dimensions; it may be corrupted: {again}")
    state = _read_tensors(tensors, again)
    args = meta.get("args", {})
    _check_size_args(name, args, state, meta_path, again)
    try:
        with torch.device("meta"):  # the shapes these args give, before any memory is spent on them
            built = build(meta["dim"], args)
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
    fitted = build(meta["dim"], args)
    fitted.load_state_dict(state, strict=True)
    scores = meta.get("scores", {})
    fitted.scores = scores if isinstance(scores, dict) else {}
    return fitted


def _read_tensors(tensors: Path, again: str) -> Dict[str, torch.Tensor]:
    """The tensors of a sampler's .safetensors file (their sizes are checked against the file by safetensors)."""
    try:
        open(tensors, "rb").close()  # safetensors says "No such file" for a file it may not read
        return load_file(str(tensors))
    except PermissionError:
        raise unreadable(tensors, "sampler weights") from None
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise VaekitError(f"{tensors} is missing or damaged ({str(e).splitlines()[0]}); {again}") from None


def _check_size_args(name: str, args: dict, state: dict, meta_path: Path, again: str) -> None:
    """The args that set the sampler's size are no larger than its saved tensors can hold (so a damaged
    JSON cannot make vaekit build a huge sampler): each adds at least one tensor (count_args) or one
    number (width_args)."""
    cls = SAMPLERS.get(name)
    limits = {**{k: len(state) for k in cls.count_args}, **{k: sum(v.numel() for v in state.values())
                                                           for k in cls.width_args}}
    for key, limit in limits.items():
        value = args.get(key)
        if type(value) is int and value > limit:  # other types are refused as the sampler is built
            raise VaekitError(f"sampler file {meta_path} gives {key}={value!r}, more than its weights file holds "
                              f"({limit}); it may be corrupted: {again}")
