"""Weights to and from diffusers' ``AutoencoderKL`` folders (``vaekit export --format diffusers``,
``vaekit import-diffusers``), without importing diffusers: this writes and reads the files it reads and writes.

A diffusers folder holds ``config.json`` (the ``AutoencoderKL`` constructor's arguments) and
``diffusion_pytorch_model.safetensors``. vaekit's ResNet with a spatial latent (vaekit/nn/resnet.py) has
diffusers' module names, so the weights convert by renaming the quant convs (``resnet.DIFFUSERS_KEYS``). What
must agree, and is checked here:

- the network: ``resnet`` with ``latent_channels`` (diffusers' ``double_z`` moment map), one decoder output
  per value (diffusers' decoder gives the image itself), no condition;
- the posterior: ``gaussian`` (means, then log-variances clamped to [-30, 20], as ``DiagonalGaussianDistribution``);
- GroupNorm: diffusers uses ``norm_num_groups`` for every norm; vaekit uses, per norm, the most groups up to
  ``norm_groups`` (32) that divide the width, so a run exports only where every norm has the same count
  (all widths divisible by it), and an import sets ``norm_groups`` to diffusers' value.

diffusers models are trained on images in [-1, 1]; vaekit's images are in [0, 1]. The weights are the same
functions either way: an imported model sees vaekit's data until it is fine-tuned on it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .. import rundir
from ..data.types import DataInfo
from ..errors import VaekitError
from ..nn.resnet import DIFFUSERS_KEYS

CONFIG = "config.json"
WEIGHTS = "diffusion_pytorch_model.safetensors"
IMPORTED = "imported.safetensors"  # an imported run's weights once fine-tuning has begun (train_run moves them)
SCALING_FACTOR = 0.18215  # diffusers' default (Stable Diffusion's); latent diffusion rescales z by it
DISCRIMINATOR = "vaekit_discriminator.safetensors"  # a run's discriminator (training only) beside diffusers' files
VAEKIT_KEY = "_vaekit"    # diffusers ignores config keys that start with "_": the vaekit parts of a round trip


def _refuse(run, why: str) -> VaekitError:
    return VaekitError(f"run {run} cannot be exported to diffusers: {why}")


def _norm_groups(model: nn.Module, run) -> int:
    counts = {m.num_groups for m in model.modules() if isinstance(m, nn.GroupNorm)}
    if len(counts) != 1:
        raise _refuse(run, f"its GroupNorms have {sorted(counts)} groups, and diffusers uses one norm_num_groups "
                           "for all; train with widths that all divide by one count (e.g. multiples of 32)")
    return counts.pop()


def diffusers_config(run) -> dict:
    """The ``AutoencoderKL`` config.json of a vaekit run, or a VaekitError saying in one line why it has none."""
    cfg, model = run.config, run.model
    net = cfg.model.network
    if net.name != "resnet" or net.args.get("latent_channels") is None:
        raise _refuse(run.dir, f"its network is {net.name!r}{'' if net.name != 'resnet' else ' with a vector latent'}"
                               "; only --network resnet with --latent-channels (a latent map) has diffusers' layout")
    if cfg.model.posterior.name != "gaussian" or cfg.model.conditional:
        raise _refuse(run.dir, "diffusers' AutoencoderKL has a gaussian posterior and no condition; this run has "
                               f"posterior {cfg.model.posterior.name!r}, conditional {cfg.model.conditional}")
    channels = int(cfg.model.data_shape[0])
    if model.decoder.conv_out.out_channels != channels:
        raise _refuse(run.dir, f"its {cfg.model.likelihood.name} likelihood takes "
                               f"{model.decoder.conv_out.out_channels // channels} decoder outputs per value, and "
                               "diffusers' decoder gives one (the image); use laplace, gaussian or bernoulli")
    widths = [int(w) for w in net.args["widths"]]
    return {"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": widths,
            "down_block_types": ["DownEncoderBlock2D"] * len(widths), "force_upcast": True,
            "in_channels": channels, "out_channels": channels, "latent_channels": int(net.args["latent_channels"]),
            "latents_mean": None, "latents_std": None, "layers_per_block": int(net.args.get("blocks", 2)),
            "mid_block_add_attention": bool(net.args.get("attention", False)),
            "norm_num_groups": _norm_groups(model, run.dir), "sample_size": int(cfg.model.data_shape[1]),
            "scaling_factor": SCALING_FACTOR, "shift_factor": None,
            "up_block_types": ["UpDecoderBlock2D"] * len(widths), "use_post_quant_conv": True, "use_quant_conv": True}


def _to_diffusers(key: str) -> str:
    for ours, theirs in DIFFUSERS_KEYS.items():
        if key.startswith(ours):
            return theirs + key[len(ours):]
    return key


def _from_diffusers(key: str) -> str:
    for ours, theirs in DIFFUSERS_KEYS.items():
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return key


def is_network_key(key: str) -> bool:
    return key.startswith(("encoder.", "decoder."))


def is_discriminator_key(key: str) -> bool:
    return key.startswith("adversary.")


def export_diffusers(run, out) -> Path:
    """Write the folder ``out`` that ``diffusers.AutoencoderKL.from_pretrained(out)`` loads with this run's
    weights; the rest of the run (the likelihood's scale, its config) rides along under ``_vaekit``."""
    from ..run import as_run

    run = as_run(run)
    config = diffusers_config(run)
    state = run.model.state_dict()
    config[VAEKIT_KEY] = {"model": run.config.to_dict()["model"], "data_info": run.config.data_info,
                          "data": run.config.to_dict()["data"], "recipe": run.config.recipe,
                          "weights": {k: v.tolist() for k, v in state.items()
                                      if not is_network_key(k) and not is_discriminator_key(k)}}
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VaekitError(f"--out {out} is a file; choose a folder for the diffusers model")
    rundir.require_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {_to_diffusers(k): v.detach().cpu().contiguous().clone()
               for k, v in state.items() if is_network_key(k)}
    rundir.atomic_write(out / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    disc = {k: v.detach().cpu().contiguous().clone() for k, v in state.items() if is_discriminator_key(k)}
    if disc:  # a file of its own: millions of weights would swell config.json
        rundir.atomic_write(out / DISCRIMINATOR, lambda tmp: save_file(disc, tmp))
    rundir.write_text(out / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out


def read_diffusers_folder(folder) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """config.json and the weights of a diffusers AutoencoderKL folder, checked to be a layout vaekit has."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise VaekitError(f"{folder} is not a diffusers AutoencoderKL folder: it needs {CONFIG} and {WEIGHTS} "
                          "(AutoencoderKL.save_pretrained(folder) writes them; a .bin-only folder: save it again "
                          "with safe_serialization=True)")
    config = rundir.read_json(folder / CONFIG, "diffusers config", "save the model again with save_pretrained")
    wrong = _unsupported(config)
    if wrong:
        raise VaekitError(f"{folder / CONFIG} describes a model vaekit's resnet cannot hold: {wrong}")
    try:
        weights = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as e:
        raise VaekitError(f"{folder / WEIGHTS} is corrupted or unreadable ({e}); save the model again") from None
    if (folder / DISCRIMINATOR).is_file():  # a vaekit export's discriminator: the keys are vaekit's already
        try:
            weights.update({k: v for k, v in load_file(str(folder / DISCRIMINATOR)).items()
                            if is_discriminator_key(k)})
        except (SafetensorError, OSError, ValueError) as e:
            raise VaekitError(f"{folder / DISCRIMINATOR} is corrupted or unreadable ({e}); export the run again, "
                              "or delete the file to start the discriminator afresh") from None
    return config, weights


def _unsupported(config) -> Optional[str]:
    """Why a diffusers config has no vaekit counterpart, or None."""
    if not isinstance(config, dict) or config.get("_class_name") != "AutoencoderKL":
        return "its _class_name is not AutoencoderKL"
    widths = config.get("block_out_channels")
    if not isinstance(widths, list) or not widths or not all(isinstance(w, int) and w > 0 for w in widths):
        return f"block_out_channels {widths!r} is not a list of positive integers"
    checks = [
        (set(config.get("down_block_types", [])) == {"DownEncoderBlock2D"}
         and len(config["down_block_types"]) == len(widths), "down_block_types other than DownEncoderBlock2D"),
        (set(config.get("up_block_types", [])) == {"UpDecoderBlock2D"}
         and len(config["up_block_types"]) == len(widths), "up_block_types other than UpDecoderBlock2D"),
        (config.get("act_fn", "silu") == "silu", f"act_fn {config.get('act_fn')!r}, not silu"),
        (config.get("use_quant_conv", True) and config.get("use_post_quant_conv", True),
         "no quant_conv / post_quant_conv"),
        (config.get("in_channels", 3) == config.get("out_channels", 3),
         f"in_channels {config.get('in_channels')} != out_channels {config.get('out_channels')}"),
        (all(w % int(config.get("norm_num_groups", 32)) == 0 for w in widths),
         f"norm_num_groups {config.get('norm_num_groups')} does not divide every width {widths}"),
    ]
    return next((why for ok, why in checks if not ok), None)


def _image_shape(config: dict, image_size) -> Tuple[int, int, int]:
    size = image_size if image_size is not None else config.get("sample_size", 256)
    h, w = (size, size) if isinstance(size, int) else tuple(int(v) for v in size)
    f = 2 ** (len(config["block_out_channels"]) - 1)
    if h % f or w % f or h < f or w < f:
        raise VaekitError(f"image size {h}x{w} is not a multiple of the model's down-sampling factor {f}, and "
                          "diffusers' decoder up-samples by exactly 2 per level; give --image-size a multiple of "
                          f"{f}")
    return int(config.get("in_channels", 3)), h, w


def parse_image_size(value: Optional[str]):
    """"64" -> 64, "48x64" -> (48, 64), None -> None."""
    if value is None:
        return None
    try:
        sizes = [int(v) for v in str(value).lower().split("x")]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise VaekitError(f"--image-size takes S or HxW (64, 48x64), got {value!r}")
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


def import_config(config: dict, image_size=None):
    """The vaekit RunConfig of a diffusers AutoencoderKL config: the ``autoencoder-kl`` recipe's training
    settings with the folder's layout, or the exported run's own config when the folder came from vaekit."""
    from ..app.options import apply_options, base_config
    from ..config import RunConfig

    own = config.get(VAEKIT_KEY)
    if isinstance(own, dict):
        d = base_config(own.get("recipe")).to_dict()
        d.update(model=own["model"], data_info=own["data_info"], data=own.get("data", d["data"]))
        cfg = RunConfig.from_dict(d, where="the _vaekit part of the diffusers config")
        if image_size is not None:
            cfg.model.data_shape = list(_image_shape(config, image_size))
            cfg.data_info["shape"] = list(cfg.model.data_shape)
    else:
        widths = config["block_out_channels"]
        cfg = apply_options(base_config("autoencoder-kl"), {
            "widths": widths, "blocks": int(config.get("layers_per_block", 2)),
            "attention": bool(config.get("mid_block_add_attention", True)),
            "latent_channels": int(config.get("latent_channels", 4)), "downsample": 2 ** (len(widths) - 1)},
            [f"model.network.args.norm_groups={int(config.get('norm_num_groups', 32))}"])
        shape = _image_shape(config, image_size)
        cfg.model.data_shape = list(shape)
        cfg.data_info = DataInfo(name="diffusers AutoencoderKL", kind="image", shape=shape,
                                 extra={"imported": "diffusers"}).to_dict()
        cfg.data.source = ""  # no training data: `vaekit train --resume --data ...` gives it
    # no LPIPS term: its weights files are the user's and are not in the folder, and a fine-tuning (--resume)
    # cannot change the config; the recipe's reconstruction, KL and adversarial terms remain
    cfg.train.perceptual = 0.0
    return cfg


def import_diffusers(folder, out, image_size=None, overwrite: bool = False):
    """Make the vaekit run ``out`` (config.json and model.safetensors; no training state) from a diffusers
    AutoencoderKL folder. ``image_size``: S or (H, W), the images the run is for (default its sample_size)."""
    from ..models.build import build_model
    from ..run import Run

    config, weights = read_diffusers_folder(folder)
    cfg = import_config(config, image_size)
    out = Path(out)
    if rundir.is_run(out) and rundir.has_checkpoint(out) and not overwrite:
        raise VaekitError(f"--out {out} already holds a run; choose another --out or pass --overwrite")
    if out.is_dir() and not rundir.is_run(out) and any(out.iterdir()):
        raise VaekitError(f"--out {out} is a non-empty directory that is not a run; choose another --out")
    model = build_model(cfg.model, name=cfg.model.variant)
    state = {_from_diffusers(k): v for k, v in weights.items()}
    own = config.get(VAEKIT_KEY) if isinstance(config.get(VAEKIT_KEY), dict) else {}
    for key, value in model.state_dict().items():  # the parts diffusers has no counterpart of
        saved = own.get("weights", {}).get(key)
        state.setdefault(key, value if saved is None else torch.tensor(saved, dtype=value.dtype))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = " ".join(str(e).strip().splitlines()[:2])
        raise VaekitError(f"the weights in {Path(folder) / WEIGHTS} do not fit its {CONFIG} ({first})") from None
    rundir.make_dir(out)
    for name in (rundir.BEST, rundir.RAW, rundir.STATE, rundir.METRICS, IMPORTED):
        (out / name).unlink(missing_ok=True)
    rundir.save_weights(out / rundir.WEIGHTS, model, {"epoch": "0", "imported": "diffusers"})
    rundir.write_config(out, cfg)
    model.eval()
    return Run(out, cfg, model)


def imported_weights(run_dir) -> Optional[Path]:
    """The weights an imported run's fine-tuning starts from, or None for a run that trained (has state.pt)."""
    run_dir = Path(run_dir)
    if (run_dir / rundir.STATE).exists():
        return None
    if (run_dir / IMPORTED).is_file():
        return run_dir / IMPORTED
    weights = run_dir / rundir.WEIGHTS
    try:
        from safetensors import safe_open
        with safe_open(str(weights), "pt") as f:
            return weights if (f.metadata() or {}).get("imported") else None
    except (SafetensorError, OSError, ValueError):
        return None


def fine_tune_config(out, options: dict, sets, recipe):
    """The config that fine-tunes the imported run ``out`` (``vaekit train --out RUN --resume --data DATA``): the
    imported model, the data given, fresh optimizer state from epoch 0; the options --resume allows may change."""
    from ..app.options import RESUME_OPTIONS, apply_options

    cfg = rundir.read_config(out)
    options = dict(options, data=options.get("data") or cfg.data.source or None)
    if not options["data"]:
        raise VaekitError(f"run {out} was imported and has no data of its own; give the data to fine-tune on: "
                          f"vaekit train --out {out} --resume --data DATA (in Python: data=...)")
    given = sorted("--" + k.replace("_", "-") for k, v in options.items()
                   if v is not None and k not in RESUME_OPTIONS + ("data",))
    given += (["--set"] if list(sets) else []) + (["--recipe"] if recipe else [])
    if given:
        raise VaekitError(f"fine-tuning the imported run {out} keeps its model and training settings: only --data "
                          f"and {', '.join('--' + k.replace('_', '-') for k in RESUME_OPTIONS)} may be given, "
                          f"not {', '.join(given)}")
    return apply_options(cfg, {k: v for k, v in options.items() if k in RESUME_OPTIONS + ("data",)})
