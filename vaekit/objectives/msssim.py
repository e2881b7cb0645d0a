"""MSSSIM-VAE: the reconstruction term is 1 - MS-SSIM between an image and the decoder's mean."""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from ..contract.bounds import elbo_terms
from ..errors import VaekitError
from ..registry import OBJECTIVES
from .base import LossOutput, Objective, layer_terms

SIGMA = 1.5                                          # Gaussian window's width (Wang et al. 2004)
K1, K2 = 0.01, 0.03                                  # C1 = (K1 L)^2, C2 = (K2 L)^2 with L = 1
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)   # Wang, Simoncelli & Bovik 2003, finest scale first
FLOOR = 1e-6                                         # keeps x^w defined (and its gradient finite) for x <= 0


def gaussian_window(size: int, sigma: float = SIGMA, like: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A size x size Gaussian window of standard deviation ``sigma``, summing to 1, (1, 1, size, size)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :])[None, None]
    return w if like is None else w.to(like)


def ssim_parts(x: torch.Tensor, y: torch.Tensor, window: int = 11,
               data_range: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-example SSIM and contrast-structure term of images (B, C, H, W), each (B,).

    Wang, Bovik, Sheikh & Simoncelli 2004, "Image Quality Assessment: From Error Visibility to
    Structural Similarity", eq. 13 with the Gaussian window of sec. III-B (sigma 1.5):
    SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
    C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = ``data_range``; local statistics over every window that fits
    in the image ('valid', no padding), each channel alone, then the mean over windows and channels.
    ``cs`` is the mean of the second factor, (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2).
    """
    c = x.shape[1]
    w = gaussian_window(window, like=x).expand(c, 1, window, window)
    stats = F.conv2d(torch.cat([x, y, x * x, y * y, x * y]), w, groups=c)   # (5B, C, H', W')
    mx, my, xx, yy, xy = stats.chunk(5)
    vx, vy, cxy = xx - mx * mx, yy - my * my, xy - mx * my      # local variances and covariance
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    cs = (2 * cxy + c2) / (vx + vy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, data_range: float = 1.0) -> torch.Tensor:
    """Per-example SSIM of images (B, C, H, W), (B,); see :func:`ssim_parts`."""
    return ssim_parts(x, y, window, data_range)[0]


def plan(height: int, width: int, window: int = 11, scales: int = 5) -> Tuple[int, List[float]]:
    """The window side and the exponents used on an H x W image: shrunk to fit small images.

    The window shrinks to the largest odd side <= min(H, W); the scales are the most (at most
    ``scales``) whose coarsest image, halved at each scale, is still at least the window's side; the
    exponents are the standard ones of those scales (finest first), renormalised to sum to 1.
    """
    side = min(height, width)
    window = min(window, side if side % 2 else side - 1)
    used = 1
    while used < min(scales, len(WEIGHTS)) and side // 2 ** used >= window:
        used += 1
    weights = WEIGHTS[:used]
    return window, [w / sum(weights) for w in weights]


def ms_ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, scales: int = 5,
            data_range: float = 1.0) -> torch.Tensor:
    """Per-example multi-scale SSIM of images (B, C, H, W), (B,).

    Wang, Simoncelli & Bovik 2003, "Multi-scale structural similarity for image quality
    assessment", eq. 7: MS-SSIM = l_M^a_M prod_j cs_j^b_j, the contrast-structure term at each
    scale j = 1..M and the luminance at the coarsest M, the image low-passed and halved (2 x 2
    average) between scales, a_M = b_M. As in the common implementations the coarsest factor is
    the mean SSIM map there (l_M cs_M together), and with several scales each factor is floored at
    1e-6 before its fractional power (the relu of tf.image.ssim_multiscale; an example whose factor
    is below the floor gets no gradient from it). On small images :func:`plan` shrinks the window
    and the number of scales; with one scale this is SSIM exactly, negative values included.
    """
    if x.dim() != 4 or x.shape != y.shape:
        raise VaekitError(f"MS-SSIM compares two image batches of one shape (B, C, H, W), got {tuple(x.shape)} "
                          f"and {tuple(y.shape)}")
    window, weights = plan(x.shape[2], x.shape[3], window, scales)
    result = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    for j, w in enumerate(weights):
        if j > 0:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        full, cs = ssim_parts(x, y, window, data_range)
        factor = full if j == len(weights) - 1 else cs
        result = result * (factor if w == 1 else factor.clamp(min=FLOOR).pow(w))  # one scale: SSIM as is
    return result


@OBJECTIVES.register("msssim")
class MSSSIM(Objective):
    """loss = mean_batch (1 - MS-SSIM(x, x_hat)) + w * beta * KL, x_hat the decoder's mean.

    Snell, Ridgeway, Liao, Roads, Mozer & Zemel 2017, "Learning to Generate Images with Perceptual
    Similarity Metrics", as in pythae's MSSSIM_VAE (beta 1, window 11, 5 scales): the pixel-wise
    reconstruction term is replaced by the image dissimilarity 1 - MS-SSIM (:func:`ms_ssim`, per
    example, unscaled: at most 1, while the KL is in nats). Images only, with values in [0, 1]
    (the constants use L = 1); a decoder mean outside [0, 1] (a Gaussian decoder's) is clamped to
    it. On 8 x 8 digits the window shrinks to 7 and one scale remains (plain SSIM; :func:`plan`).
    ``w`` is the trainer's KL warm-up factor. Terms: the true ``elbo`` of
    :func:`~vaekit.contract.bounds.elbo_terms` (so ``evaluate`` still means something), its
    ``recon`` and ``kl``, ``msssim`` and ``objective`` (the loss itself). Early stopping and best
    checkpoints follow ``objective`` on the validation data, the quantity trained (as pythae keeps
    its best model by validation loss): the ELBO is not what this objective maximises, and
    ``msssim`` alone would ignore the KL.
    """

    monitor = ("objective", "min")

    def __init__(self, beta: float = 1.0, window: int = 11, scales: int = 5):
        if beta < 0 or window < 1 or window % 2 == 0 or not 1 <= scales <= len(WEIGHTS):
            raise VaekitError(f"the msssim objective needs beta >= 0, an odd window >= 1 and 1 <= scales <= "
                              f"{len(WEIGHTS)}, got beta={beta}, window={window}, scales={scales}")
        self.beta, self.window, self.scales = float(beta), int(window), int(scales)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        if x.dim() != 4:
            raise VaekitError(f"the msssim objective needs image data shaped (C, H, W), got examples shaped "
                              f"{tuple(x.shape[1:])} (a table?); use --model vae (or --objective elbo) for such data")
        if float(x.min()) < 0 or float(x.max()) > 1:
            raise VaekitError(f"the msssim objective needs image values in [0, 1], got [{float(x.min()):.3g}, "
                              f"{float(x.max()):.3g}]; scale the data to [0, 1]")
        out = model(x, c)
        t = elbo_terms(out, x)
        try:
            x_hat = out.px.mean.clamp(0, 1)                               # (B, C, H, W)
        except NotImplementedError:
            raise VaekitError("the msssim objective needs a likelihood with a mean (bernoulli or gaussian); "
                              "use --likelihood bernoulli") from None
        sim = ms_ssim(x, x_hat, self.window, self.scales)                # (B,)
        loss = (1 - sim).mean() + kl_weight * self.beta * t.kl.mean()
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), "msssim": sim.mean(),
                 "objective": loss, **layer_terms(t.kls)}
        return LossOutput({"main": loss}, terms)
