"""Image quality of reconstructions: ``psnr``, ``ssim``, ``lpips`` and ``rfid``, what autoencoder papers report.

Each compares every image x of the scored split (values in [0, 1], data range 1) with the decoded posterior
mean of its code, clipped to [0, 1] (``model.reconstruct``; deterministic).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple

import torch

from ..data.batching import iterate_batches
from ..data.types import TensorData
from ..errors import VaekitError
from ..models.helpers import evaluating
from ..nn.lpips import MIN_SIDE, NETS
from ..nn.lpips_weights import load_lpips, unavailable as lpips_unavailable
from ..objectives.msssim import plan, ssim
from ..registry import METRICS
from .base import EvalContext, Metric
from .fidelity import InceptionFID, pick
from .frechet import frechet_distance_of
from .inception import load_inception
from .recon import psnr_db


def reconstructions(model, data: TensorData, batch_size: int) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """(x, x_hat) batches: the images and their decoded posterior means clipped to [0, 1], without gradients."""
    with evaluating(model), torch.no_grad():
        for x, y in iterate_batches(data, batch_size, device=model.device):
            yield x, model.reconstruct(x, y if model.conditioned else None).clamp(0, 1)


def mean_over_images(model, data: TensorData, batch_size: int,
                     score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """The mean over every image of ``score(x, x_hat)`` (B,), summed in float64."""
    total, n = 0.0, 0
    for x, x_hat in reconstructions(model, data, batch_size):
        total += float(score(x, x_hat).double().sum())
        n += x.shape[0]
    return total / n


class ImageQuality(Metric):
    """A metric of reconstructions of images in [0, 1]."""

    def __init__(self, batch_size: int = 256):
        self.batch_size = max(1, int(batch_size))

    def unavailable(self, model, data: TensorData, ctx: EvalContext) -> Optional[str]:
        if data.x.dim() != 4:
            return f"{self.title} needs images (B, C, H, W); the data's examples are shaped {tuple(data.x.shape[1:])}"
        if not len(data):
            return f"{self.title} needs at least one image"
        low, high = float(data.x.min()), float(data.x.max())
        if low < 0 or high > 1:
            return f"{self.title} needs image values in [0, 1] (data range 1); the data spans [{low:.3g}, {high:.3g}]"
        return super().unavailable(model, data, ctx)


@METRICS.register("psnr")
class PSNR(ImageQuality):
    """Mean over images of :func:`~vaekit.evaluate.recon.psnr_db` (data range 1); infinite when some image is
    reconstructed exactly (``recon``'s psnr stops at 100 dB)."""

    title = "psnr (peak signal-to-noise ratio of reconstructions)"
    meanings = {"psnr": "peak signal-to-noise ratio of the decoded posterior mean, dB, mean over images, data "
                        "range 1 (higher is better; inf: some image reconstructed exactly)"}
    paper = "Gonzalez & Woods, Digital Image Processing (PSNR)"

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, float]:
        return {"psnr": mean_over_images(model, data, self.batch_size, psnr_db)}


@METRICS.register("ssim")
class SSIM(ImageQuality):
    """Mean over images of SSIM (Wang et al. 2004, eq. 13; :func:`~vaekit.objectives.msssim.ssim`), Gaussian
    window 11 (sigma 1.5), shrunk to the largest odd side that fits smaller images."""

    title = "ssim (structural similarity of reconstructions)"
    meanings = {"ssim": "structural similarity of the decoded posterior mean to the image, mean over images, "
                        "data range 1 (1 is identical)"}
    paper = "Wang, Bovik, Sheikh & Simoncelli 2004 (SSIM)"

    def __init__(self, window: int = 11, batch_size: int = 256):
        super().__init__(batch_size)
        if window < 1 or window % 2 == 0:
            raise VaekitError(f"option window of ssim must be an odd number of pixels, got {window}")
        self.window = int(window)

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, float]:
        window = plan(data.x.shape[2], data.x.shape[3], self.window, 1)[0]
        value = mean_over_images(model, data, self.batch_size, lambda x, x_hat: ssim(x, x_hat, window))
        return {"ssim": value, "ssim_window": window}


@METRICS.register("lpips")
class LPIPSMetric(ImageQuality):
    """Mean LPIPS (Zhang et al. 2018, :mod:`vaekit.nn.lpips`) between images and their reconstructions.
    ``backbone``: torchvision's VGG16 (or AlexNet) weights file; ``lin``: the lpips package's lin weights
    (default: the installed package's); ``net``: vgg or alex. Each defaults to the run's own (``--set
    lpips.backbone=PATH`` of a ``--perceptual`` run)."""

    title = "lpips (perceptual distance of reconstructions)"
    meanings = {"lpips": "LPIPS v0.1 distance of the decoded posterior mean to the image, mean over images "
                         "(lower is better; 0 is identical)",
                "lpips_net": "the LPIPS backbone and its weights files"}
    paper = "Zhang, Isola, Efros, Shechtman & Wang 2018 (LPIPS)"

    def __init__(self, net: Optional[str] = None, backbone: Optional[str] = None, lin: Optional[str] = None,
                 batch_size: int = 64):
        super().__init__(batch_size)
        if net is not None and net not in NETS:
            raise VaekitError(f"option net of lpips must be one of {', '.join(NETS)}, got {net!r}")
        self.given = {"net": net, "backbone": backbone or None, "lin": lin or None}

    def files(self, ctx: Optional[EvalContext]) -> Dict[str, Optional[str]]:
        """net, backbone and lin: the options given, else the run's own (``--perceptual`` runs name them)."""
        run = (ctx.lpips if ctx is not None else None) or {}
        files = {k: v if v is not None else run.get(k) for k, v in self.given.items()}
        if self.given["net"] is not None and self.given["net"] != run.get("net", "vgg") and not self.given["backbone"]:
            files["backbone"] = files["lin"] = None  # the run's files are of the other network
        return {**files, "net": files["net"] or "vgg"}

    def unavailable(self, model, data: TensorData, ctx: EvalContext) -> Optional[str]:
        files = self.files(ctx)
        why = lpips_unavailable(**files) or super().unavailable(model, data, ctx)
        side = MIN_SIDE[files["net"]]
        if why is None and min(data.x.shape[2:]) < side:
            why = (f"{self.title} with the {files['net']} network needs images of at least {side} x {side} pixels; "
                   f"these are {data.x.shape[2]} x {data.x.shape[3]}")
        return why

    def __call__(self, model, data: TensorData, ctx=None) -> Dict[str, object]:
        f = self.files(ctx)
        net = load_lpips(f["net"], f["backbone"], f["lin"]).to(model.device)
        value = mean_over_images(model, data, self.batch_size, net)
        files = f"{Path(f['backbone']).name}, lin {Path(f['lin']).name if f['lin'] else 'of the lpips package'}"
        return {"lpips": value, "lpips_net": f"{f['net']} ({files})"}


@METRICS.register("rfid")
class ReconstructionFID(InceptionFID):
    """rFID: FID (Heusel et al. 2017) between the reconstructions and the images themselves, in the Inception
    pool features (the number latent-diffusion papers report for autoencoders, Rombach et al. 2022, Tab. 8).
    Options as ``fid``'s; ``--fid-weights`` sets both."""

    name, title = "rfid", "rfid (Inception FID of reconstructions)"
    meanings = {"rfid": "Fréchet distance (FID) of the reconstructions to the images, Inception features (lower is "
                        "better)",
                "rfid_n": "images compared", "rfid_features": "Inception weights file and preprocessing"}
    requires = ()

    def __call__(self, model, data: TensorData, ctx: EvalContext) -> Dict[str, object]:
        real = pick(data, self.n, ctx.seed)
        net = load_inception(self.weights, self.preprocess).to(model.device)
        real_f, fake_f = [], []
        for x, x_hat in reconstructions(model, real, self.batch_size):
            real_f.append(self.features(net, x, model.device))
            fake_f.append(self.features(net, x_hat, model.device))
        return {"rfid": frechet_distance_of(torch.cat(real_f), torch.cat(fake_f)), "rfid_n": len(real),
                "rfid_features": f"inception-v3:{self.weights.name}, {self.preprocess} preprocessing"}
