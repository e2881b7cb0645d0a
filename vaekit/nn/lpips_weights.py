"""The LPIPS network's weights, from files the user gives: nothing is downloaded, nothing unpickled.

Two files: torchvision's backbone (``vgg16-397923af.pth`` or ``alexnet-owt-7be5be79.pth``: a state dict
whose ``features.N.*`` keys this network uses, its ``classifier.*`` ignored) and the lpips package's
lin weights (``weights/v0.1/vgg.pth`` or ``alex.pth``); where the ``lpips`` package is installed, its
shipped lin file is found without importing it (the package imports torchvision). Both are read with
``torch.load(weights_only=True)`` or as safetensors.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Dict, Optional

import torch

from ..errors import VaekitError
from ..safe_load import load_state
from .lpips import LPIPS, NETS, SOURCES

LIN_SOURCE = ("the lpips package's weights/v0.1/{net}.pth (`pip install lpips==0.1.4 --no-deps` ships it; or "
              "github.com/richzhang/PerceptualSimilarity, lpips/weights/v0.1/{net}.pth)")


def shipped_lin(net: str) -> Optional[Path]:
    """The installed lpips package's ``weights/v0.1/{net}.pth``, or None; the package is not imported."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "weights" / "v0.1" / f"{net}.pth"
    return path if path.is_file() else None


def unavailable(net: str = "vgg", backbone: Optional[str] = None, lin: Optional[str] = None) -> Optional[str]:
    """Why LPIPS cannot be computed with these files (one line), or None."""
    if net not in NETS:
        return f"LPIPS has no network {net!r}; lpips.net is one of {', '.join(NETS)}"
    source = SOURCES[net]
    if not backbone:
        return (f"LPIPS needs the {net} backbone weights, which cannot be downloaded here: get {source} and "
                "pass it with --set lpips.backbone=PATH")
    if not Path(backbone).expanduser().is_file():
        return f"LPIPS: the backbone weights file {backbone} does not exist (expected {source})"
    if lin and not Path(lin).expanduser().is_file():
        return f"LPIPS: the lin weights file {lin} does not exist (expected {LIN_SOURCE.format(net=net)})"
    if not lin and shipped_lin(net) is None:
        return (f"LPIPS needs its lin weights: install the lpips package (`pip install lpips==0.1.4 --no-deps`) "
                f"or pass {LIN_SOURCE.format(net=net)} with --set lpips.lin=PATH")
    return None


def check_keys(got: Dict[str, torch.Tensor], want: Dict[str, torch.Tensor], path: Path, what: str,
               expected: str) -> None:
    """Every wanted key present with its shape, or a VaekitError naming the first differences."""
    missing = sorted(set(want) - set(got))
    shapes = [f"{k} {tuple(got[k].shape)} (expected {tuple(want[k].shape)})" for k in sorted(set(want) & set(got))
              if got[k].shape != want[k].shape]
    if missing or shapes:
        said = (f"{len(missing)} missing key(s) ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
                if missing else f"wrong shapes: {', '.join(shapes[:2])}")
        raise VaekitError(f"{what} file {path} does not fit: {said}; pass {expected}")


def load_lpips(net: str = "vgg", backbone: Optional[str] = None, lin: Optional[str] = None) -> LPIPS:
    """The frozen LPIPS network with the backbone of ``backbone`` and the lin weights of ``lin`` (default:
    the installed lpips package's), float32 on the CPU; a VaekitError naming the file and its expected source
    when a file is missing, unreadable or of another network."""
    reason = unavailable(net, backbone, lin)
    if reason:
        raise VaekitError(reason)
    model = LPIPS(net)
    mine = model.state_dict()
    backbone_path = Path(backbone).expanduser()
    state = load_state(backbone_path, f"LPIPS {net} backbone", model.source)
    want = {k: v for k, v in mine.items() if k.startswith("features.")}
    check_keys(state, want, backbone_path, f"LPIPS {net} backbone", model.source)
    lin_path = Path(lin).expanduser() if lin else shipped_lin(net)
    lin_expected = LIN_SOURCE.format(net=net)
    raw = load_state(lin_path, f"LPIPS {net} lin", lin_expected)
    lins = {f"lin.{k[3]}.weight": v for k, v in raw.items()  # the package's lin{l}.model.1.weight
            if k.startswith("lin") and k[3:4].isdigit() and k.endswith(".model.1.weight")}
    check_keys(lins, {k: v for k, v in mine.items() if k.startswith("lin.")}, lin_path, f"LPIPS {net} lin",
               lin_expected)
    model.load_state_dict({**{k: state[k].float() for k in want}, **{k: v.float() for k, v in lins.items()}})
    return model


def random_backbone(net: str, seed: int) -> Dict[str, torch.Tensor]:
    """A seeded random backbone in torchvision's layout (``features.N.weight``/``.bias``): He-normal weights
    (std sqrt(2 / fan_in)) and N(0, 0.1^2) biases, drawn in key order from one CPU generator. What the parity
    check against ``lpips.LPIPS(pnet_rand=True)`` loads into both networks, so neither needs real weights."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in LPIPS(net).state_dict().items():
        if not key.startswith("features."):
            continue
        if key.endswith(".weight"):
            std = (2.0 / value[0].numel()) ** 0.5
            out[key] = torch.randn(value.shape, generator=g) * std
        else:
            out[key] = torch.randn(value.shape, generator=g) * 0.1
    return out
