"""``--perceptual W``: a weighted LPIPS distance between each image and its reconstruction, added to any
objective's main loss.

Perceptual reconstruction losses: Johnson, Alahi & Fei-Fei 2016; with LPIPS (Zhang et al. 2018) as in the
autoencoders of VQGAN (Esser et al. 2021, eq. 5: L_rec = |x - x_hat| + L_perceptual) and latent diffusion
(Rombach et al. 2022). The LPIPS network (:mod:`vaekit.nn.lpips`) is frozen and held by the objective, not
the model: it is in no parameter group, no optimizer, no checkpoint, and has no state a resume could lose.

An objective whose constructor names a ``perceptual`` keyword receives the :class:`PerceptualTerm` (or
None) and adds it itself, where it must enter other terms (an adversarial objective's adaptive weight
needs the whole reconstruction loss); any other objective is wrapped in :class:`Perceptual`.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..errors import VaekitError
from ..nn.lpips import LPIPS
from .base import LossOutput, Objective


class PerceptualTerm:
    """``term(x, x_hat)`` -> the LPIPS distance of each image (B,) (unweighted); ``term.weight`` is W."""

    def __init__(self, weight: float, net: LPIPS):
        self.weight, self.net = float(weight), net

    def __call__(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise VaekitError(f"--perceptual compares images, but the data's examples are shaped {tuple(x.shape[1:])}; "
                              "drop --perceptual for such data")
        if self.net.shift.device != x.device:
            self.net.to(x.device)
        return self.net(x.float(), x_hat.float())


def reconstruction(px) -> torch.Tensor:
    """The mean of p(x|z): what the perceptual term compares with the data."""
    try:
        return px.mean
    except NotImplementedError:
        raise VaekitError("--perceptual needs a likelihood with a mean (bernoulli, gaussian, laplace); "
                          "use --likelihood gaussian") from None


class Perceptual(Objective):
    """loss_main = the inner objective's main loss + W * mean_batch LPIPS(x, x_hat); term ``lpips``.

    x_hat is the mean of p(x|z) of the inner objective's first forward pass of the model on x (seen
    through a forward hook for the duration of the call), so the term costs one LPIPS pass and no extra
    forward of the model; an objective that never runs the forward pass (the importance-weighted ones
    decode their k samples themselves) gets the decoded posterior mean, with gradients (one more decode).
    Other losses and the monitored term are the inner objective's.
    """

    def __init__(self, inner: Objective, term: PerceptualTerm):
        self.inner, self.term = inner, term
        self.monitor = inner.monitor

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        outputs = []
        handle = model.register_forward_hook(lambda module, args, out: outputs.append(out))
        try:
            result = self.inner(model, x, c, kl_weight)
        finally:
            handle.remove()
        seen = [o for o in outputs if hasattr(o, "px")]
        if seen:
            x_hat = reconstruction(seen[0].px)
        else:  # iwae, miwae, ...: no forward pass; the decoded posterior mean
            c = c if model.conditioned else None
            x_hat = reconstruction(model.decode(model.embed(x, c), c))
        distance = self.term(x, x_hat)                                        # (B,)
        losses = dict(result.losses)
        losses["main"] = losses["main"] + self.term.weight * distance.mean()
        return LossOutput(losses, {**result.terms, "lpips": distance.mean()}, result.output)  # for --discriminator
