"""GroupNorm followed by SiLU, fused into one autograd Function for channels-last feature maps on the CPU.

torch's CPU GroupNorm backward is up to 5x slower on a channels-last map than on an NCHW one when each group
holds one channel (32 channels in 32 groups, the first level of autoencoder-kl-small; the profile of
benchmarks/vs_diffusers.py's step at 64 px: the largest cost besides the convolutions). Here the
map is seen as (B, HW, C), which is its memory, and every pass runs along C: per-channel statistics over
HW, then per-group ones. It keeps what torch's pair keeps for backward: x and the SiLU's input.

GroupNorm (Wu & He 2018, "Group Normalization", eq. 1-2): y = gamma * (x - mu) / sigma + beta, with mu and
sigma^2 = Var + eps over each sample's group of C / G channels and all positions. Its gradient is the
normalisation gradient of Ioffe & Szegedy 2015 ("Batch Normalization", section 3) taken over the group
instead of the batch: with x^ = (x - mu) / sigma and g = dL/dx^ = gamma * dL/dy,

    dL/dx = (g - mean(g) - x^ * mean(g * x^)) / sigma,   dL/dgamma = sum g/gamma * x^,   dL/dbeta = sum dL/dy,

the means over the group, the sums over the batch and positions. SiLU (Elfwing et al. 2018; Hendrycks &
Gimpel 2016): s(u) = u * sigmoid(u), s'(u) = sigmoid(u) * (1 + u * (1 - sigmoid(u))), torch's silu_backward.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


def group_norm_silu(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """silu(norm(x)): the fused Function where it is faster (a channels-last map on the CPU with one channel
    per group, under autograd), torch's two ops everywhere else (more channels per group, NCHW maps, other
    devices, inference, tracing and torch.compile)."""
    if fusable(x, norm):
        return GroupNormSiLU.apply(x, norm.weight, norm.bias, norm.num_groups, norm.eps)
    return F.silu(norm(x))


def fusable(x: torch.Tensor, norm: nn.GroupNorm) -> bool:
    if x.dim() != 4 or x.device.type != "cpu" or not norm.affine or not torch.is_grad_enabled():
        return False
    if not (x.requires_grad or norm.weight.requires_grad or norm.bias.requires_grad):
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False
    if x.shape[1] != norm.num_groups:
        # one channel per group (32 groups of 32 channels) is where torch's channels-last backward is slowest
        # (5x its NCHW one at 16 x 32 x 64 x 64); with 2 or more its kernel is as fast as this Function's ops
        return False
    return x.permute(0, 2, 3, 1).is_contiguous()  # channels-last memory: (B, H, W, C)


def _plain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int, eps: float) -> torch.Tensor:
    return F.silu(F.group_norm(x, groups, weight, bias, eps))


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, HW, C), a view when x is channels-last."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def _affine(weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor,
            rstd: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """GroupNorm as x * scale + shift per (sample, channel): scale = gamma / sigma, shift = beta - mu * scale;
    both (B, 1, C) from the (B, G) statistics."""
    b, g = mean.shape
    scale = (rstd.unsqueeze(2) * weight.view(g, -1)).reshape(b, 1, -1)
    shift = bias.view(1, 1, -1) - mean.repeat_interleave(weight.numel() // g, dim=1).unsqueeze(1) * scale
    return scale, shift


class GroupNormSiLU(torch.autograd.Function):
    """silu(group_norm(x, groups, weight, bias, eps)) for a channels-last x (B, C, H, W); the output is
    channels-last too. A second derivative (create_graph=True, as rae's gradient penalty) goes through
    torch's own ops."""

    @staticmethod
    def forward(ctx, x, weight, bias, groups: int, eps: float):
        b, c, h, w = x.shape
        rows = _rows(x)
        # the group's mean and E[x^2] from per-channel sums over the positions (reductions along HW, which
        # run vectorised over C; torch's var_mean along that axis is 30x slower), accumulated in float64
        n = h * w * (c // groups)
        sums = torch.stack([rows.sum(1), torch.linalg.vecdot(rows, rows, dim=1)]).double()   # (2, B, C)
        mean, square = sums.view(2, b, groups, -1).sum(3) / n                              # (B, G) each
        rstd = ((square - mean.square()).clamp(min=0) + eps).rsqrt().to(x.dtype)
        mean = mean.to(x.dtype)
        scale, shift = _affine(weight, bias, mean, rstd)
        normed = torch.addcmul(shift, rows, scale)  # kept for SiLU's backward, as torch's pair keeps it
        out = F.silu(normed)
        ctx.save_for_backward(x, weight, bias, mean, rstd, normed)
        ctx.groups, ctx.eps = groups, eps
        return out.view(b, h, w, c).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias, mean, rstd, normed = ctx.saved_tensors
        wanted = [i for i, need in enumerate(ctx.needs_input_grad[:3]) if need]
        if torch.is_grad_enabled():  # create_graph: differentiate torch's ops, which are twice differentiable
            with torch.enable_grad():
                got = torch.autograd.grad(_plain(x, weight, bias, ctx.groups, ctx.eps),
                                          [(x, weight, bias)[i] for i in wanted], grad, create_graph=True)
            grads = [None, None, None]
            for i, g in zip(wanted, got):
                grads[i] = g
            return (*grads, None, None)
        b, c, h, w = x.shape
        groups = ctx.groups
        rows, (scale, _) = _rows(x), _affine(weight, bias, mean, rstd)
        dy = torch.ops.aten.silu_backward(_rows(grad), normed)                               # dL/dy, (B, HW, C)
        sum_dy, sum_dy_x = dy.sum(1), torch.linalg.vecdot(dy, rows, dim=1)                  # (B, C)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            n = h * w * (c // groups)
            db = (sum_dy * weight).view(b, groups, -1).sum(2)                               # sum g, (B, G)
            ds = (sum_dy_x * weight).view(b, groups, -1).sum(2)                             # sum g * x
            # dL/dx = dy * gamma / sigma + x * k + m: the formula above with x^ = (x - mu) / sigma expanded
            k = (mean * db - ds) * rstd.pow(3) / n
            m = -k * mean - db * rstd / n
            per_channel = c // groups
            k_c, m_c = (t.repeat_interleave(per_channel, dim=1).unsqueeze(1) for t in (k, m))
            grad_x = torch.addcmul(m_c, rows, k_c).addcmul_(dy, scale)
            grad_x = grad_x.view(b, h, w, c).permute(0, 3, 1, 2)
        if ctx.needs_input_grad[1]:
            mean_c, rstd_c = (t.repeat_interleave(c // groups, dim=1) for t in (mean, rstd))
            grad_weight = ((sum_dy_x - mean_c * sum_dy) * rstd_c).sum(0)
        if ctx.needs_input_grad[2]:
            grad_bias = sum_dy.sum(0)
        return grad_x, grad_weight, grad_bias, None, None
