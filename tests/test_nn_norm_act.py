"""The fused GroupNorm + SiLU (vaekit/nn/norm_act.py): values and gradients equal torch's two ops, gradcheck
and gradgradcheck in float64, and the plain ops wherever the fused Function does not apply."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vaekit.nn.norm_act import GroupNormSiLU, group_norm_silu

CL = torch.channels_last


def inputs(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=dtype) * 2 + 0.5).contiguous(memory_format=CL).requires_grad_()
    w = (torch.rand(shape[1], generator=g, dtype=dtype) + 0.5).requires_grad_()
    b = torch.randn(shape[1], generator=g, dtype=dtype).requires_grad_()
    return x, w, b


@pytest.mark.parametrize("shape,groups", [((2, 4, 3, 5), 2), ((2, 3, 2, 3), 3), ((1, 6, 1, 1), 1)])
def test_gradcheck_and_gradgradcheck(shape, groups):
    x, w, b = inputs(shape)
    fused = lambda x, w, b: GroupNormSiLU.apply(x, w, b, groups, 1e-6)  # noqa: E731
    assert torch.autograd.gradcheck(fused, (x, w, b))
    assert torch.autograd.gradgradcheck(fused, (x, w, b))


@pytest.mark.parametrize("shape,groups", [((3, 8, 5, 7), 8), ((3, 8, 5, 7), 4), ((2, 16, 4, 4), 2)])
def test_equals_torch_group_norm_then_silu(shape, groups):
    x, w, b = (t.detach().float().requires_grad_() for t in inputs(shape, seed=1))
    x = x.detach().contiguous(memory_format=CL).requires_grad_()
    grad = torch.randn(shape).contiguous(memory_format=CL)
    ours = GroupNormSiLU.apply(x, w, b, groups, 1e-6)
    theirs = F.silu(F.group_norm(x, groups, w, b, 1e-6))
    assert ours.is_contiguous(memory_format=CL)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    for a, e in zip(torch.autograd.grad(ours, (x, w, b), grad), torch.autograd.grad(theirs, (x, w, b), grad)):
        torch.testing.assert_close(a, e, atol=1e-4, rtol=1e-4)


def test_only_the_gradient_asked_for():
    x, w, b = inputs((2, 4, 3, 3))
    (gx,) = torch.autograd.grad(GroupNormSiLU.apply(x, w, b, 2, 1e-6).sum(), x)
    (ex,) = torch.autograd.grad(F.silu(F.group_norm(x, 2, w, b, 1e-6)).sum(), x)
    torch.testing.assert_close(gx, ex)


def test_dispatch_fused_only_for_channels_last_one_channel_per_group_under_autograd():
    norm = nn.GroupNorm(4, 4, eps=1e-6)
    x = torch.randn(2, 4, 3, 3)
    assert type(group_norm_silu(norm, x.contiguous(memory_format=CL)).grad_fn).__name__ == "GroupNormSiLUBackward"
    assert type(group_norm_silu(norm, x).grad_fn).__name__ == "SiluBackward0"        # NCHW: torch's ops
    two_per_group = group_norm_silu(nn.GroupNorm(2, 4), x.contiguous(memory_format=CL))
    assert type(two_per_group.grad_fn).__name__ == "SiluBackward0"
    with torch.no_grad():                                                              # inference: torch's ops
        torch.testing.assert_close(group_norm_silu(norm, x.contiguous(memory_format=CL)), F.silu(norm(x)))
