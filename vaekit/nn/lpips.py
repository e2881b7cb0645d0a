"""LPIPS, the learned perceptual image patch similarity, in plain torch (no torchvision).

Zhang, Isola, Efros, Shechtman & Wang 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", eq. 1, version 0.1 of the ``lpips`` package (github.com/richzhang/PerceptualSimilarity):

    d(x, y) = sum_l 1 / (H_l W_l) sum_{h,w} || w_l * (f^l_x(h, w) - f^l_y(h, w)) ||_2^2

where f^l are the activations of layer l of a classification network (VGG16 relu1_2 ... relu5_3, or
AlexNet relu1 ... relu5), each unit-normalised over its channels (f / (||f||_2 + 1e-10)), and w_l the
learned non-negative "lin" weights (a 1x1 convolution to one channel). Images enter in [-1, 1] and
pass the package's scaling layer ((x - shift) / scale, the ImageNet statistics in that range).

The feature stacks are laid out as torchvision's ``features`` (``features.N.weight``), so torchvision's
``vgg16-397923af.pth`` and ``alexnet-owt-7be5be79.pth`` load by their keys; the lin weights load from
the package's ``weights/v0.1/{vgg,alex}.pth`` (keys ``lin{l}.model.1.weight``).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VaekitError

SHIFT = (-0.030, -0.088, -0.188)   # the lpips package's ScalingLayer, for inputs in [-1, 1]
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10                        # lpips.normalize_tensor's epsilon

# torchvision's ``features`` Sequentials, by index: (width, kernel, stride, padding) is a conv followed by ReLU,
# "M" a max pool. VGG16: Simonyan & Zisserman 2015, configuration D (2x2 pools); AlexNet: torchvision's
# (Krizhevsky 2014's one-GPU variant, 3x3 stride-2 pools).
VGG16 = tuple("M" if w == "M" else (w, 3, 1, 1) for w in
              (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512))
ALEXNET = ((64, 11, 4, 2), "M", (192, 5, 1, 2), "M", (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))


class Spec:
    """One backbone: its layers, the indices after which lpips taps the ReLU outputs, its widths there,
    the smallest image side that reaches the last tap, and where its weights come from."""

    def __init__(self, name: str, layers: List[nn.Module], taps: Tuple[int, ...], widths: Tuple[int, ...],
                 min_side: int, source: str):
        self.name, self.layers, self.taps, self.widths = name, layers, taps, widths
        self.min_side, self.source = min_side, source


def stack(items, pool: int) -> List[nn.Module]:
    """The layers of a ``features`` table (:data:`VGG16`, :data:`ALEXNET`); pools are pool x pool, stride 2."""
    layers: List[nn.Module] = []
    c = 3
    for item in items:
        if item == "M":
            layers.append(nn.MaxPool2d(pool, 2))
        else:
            width, k, s, p = item
            layers += [nn.Conv2d(c, width, k, stride=s, padding=p), nn.ReLU()]
            c = width
    return layers


TORCHVISION = "https://download.pytorch.org/models/"
SOURCES = {"vgg": f"torchvision's vgg16-397923af.pth ({TORCHVISION}vgg16-397923af.pth)",
           "alex": f"torchvision's alexnet-owt-7be5be79.pth ({TORCHVISION}alexnet-owt-7be5be79.pth)"}
MIN_SIDE = {"vgg": 16, "alex": 31}  # the smallest image side whose last tapped layer is still 1 x 1 or more
SPECS = {
    "vgg": lambda: Spec("vgg", stack(VGG16, 2), (4, 9, 16, 23, 30), (64, 128, 256, 512, 512), MIN_SIDE["vgg"],
                        SOURCES["vgg"]),
    "alex": lambda: Spec("alex", stack(ALEXNET, 3), (2, 5, 8, 10, 12), (64, 192, 384, 256, 256), MIN_SIDE["alex"],
                         SOURCES["alex"]),
}
NETS = tuple(SPECS)


class LPIPS(nn.Module):
    """``forward(x, y)``: images (B, C, H, W) in [0, 1], C 1 or 3 (grey is repeated), -> LPIPS (B,).

    Frozen: every parameter has ``requires_grad=False`` and the module stays in eval mode; gradients
    still flow to the inputs (the perceptual loss). ``features`` holds torchvision's layout, ``lin`` the
    five 1x1 convolutions (no bias).
    """

    def __init__(self, net: str = "vgg"):
        super().__init__()
        spec = SPECS[net]()
        self.net, self.taps, self.min_side, self.source = net, spec.taps, spec.min_side, spec.source
        self.features = nn.Sequential(*spec.layers)
        self.lin = nn.ModuleList(nn.Conv2d(w, 1, 1, bias=False) for w in spec.widths)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "LPIPS":
        return super().train(False)  # a loss network: no mode to switch (it has no dropout or norm anyway)

    def layers(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The five tapped ReLU outputs of images already scaled, each unit-normalised over channels."""
        out, start = [], 0
        for stop in self.taps:
            for layer in self.features[start:stop]:
                x = layer(x)
            out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + EPS))   # (B, C_l, H_l, W_l)
            start = stop
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape != y.shape or x.shape[1] not in (1, 3):
            raise VaekitError(f"LPIPS compares two batches of grey or RGB images of one shape (B, C, H, W), got "
                              f"{tuple(x.shape)} and {tuple(y.shape)}")
        if min(x.shape[2:]) < self.min_side:
            raise VaekitError(f"LPIPS with the {self.net} network needs images of at least {self.min_side} x "
                              f"{self.min_side} pixels, got {x.shape[2]} x {x.shape[3]}"
                              f"{'; use lpips.net=vgg (16 px and up)' if self.net == 'alex' else ''}")
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        both = ((torch.cat([x, y]) * 2 - 1) - self.shift) / self.scale        # (2B, 3, H, W), [0,1] -> [-1,1]
        total = x.new_zeros(x.shape[0])
        for lin, f in zip(self.lin, self.layers(both)):
            fx, fy = f.chunk(2)
            total = total + F.conv2d((fx - fy).pow(2), lin.weight).mean((1, 2, 3))  # 1x1 lin, spatial mean
        return total

