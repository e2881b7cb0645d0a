"""LPIPS (vaekit/nn/lpips.py): parity with the lpips package, its weights files, and its known answers."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vaekit.errors import VaekitError
from vaekit.nn.lpips import LPIPS
from vaekit.nn.lpips_weights import load_lpips, random_backbone, shipped_lin, unavailable
from vaekit.objectives.msssim import gaussian_window

FIXTURE = json.loads((Path(__file__).parent / "data" / "lpips_parity.json").read_text())
needs_lin = pytest.mark.skipif(shipped_lin("vgg") is None, reason="the lpips package (its lin weights) is not "
                               "installed: pip install lpips==0.1.4 --no-deps")


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    """The parity check's seeded random backbones, saved as torchvision-layout files: {net: path}."""
    folder = tmp_path_factory.mktemp("lpips")
    paths = {}
    for net in ("vgg", "alex"):
        paths[net] = folder / f"{net}-random.pth"
        torch.save(random_backbone(net, FIXTURE["backbone_seed"]), paths[net])
    return paths


@pytest.fixture(scope="module")
def nets(backbones):
    return {net: load_lpips(net, str(path)) for net, path in backbones.items()}


@needs_lin
def test_matches_the_lpips_package_with_the_same_random_backbone(nets):
    """benchmarks/lpips_parity.py wrote the package's outputs (lpips.LPIPS(pnet_rand=True), this backbone)."""
    for case in FIXTURE["expected"].values():
        g = torch.Generator().manual_seed(FIXTURE["image_seed"] + case["size"])
        shape = (FIXTURE["pairs"], 3, case["size"], case["size"])
        x, y = torch.rand(shape, generator=g), torch.rand(shape, generator=g)
        with torch.no_grad():
            got = nets[case["net"]](x, y).double()
        assert (got - torch.tensor(case["lpips"], dtype=torch.float64)).abs().max() <= 1e-5, case


@needs_lin
def test_an_image_is_at_distance_zero_from_itself_and_grey_images_work(nets):
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(nets["vgg"](x, x), torch.zeros(2))
    assert (nets["vgg"](x, x.flip(0)) > 0).all()


@needs_lin
def test_a_blur_costs_more_lpips_than_noise_of_the_same_squared_error(nets):
    """Zhang et al. 2018, Fig. 1: a blurred copy is farther from the image than pixel error says. Measured
    against a noise copy of equal MSE: LPIPS(blur) / LPIPS(noise) > 1 while MSE(blur) / MSE(noise) = 1.
    With a random backbone only AlexNet shows it clearly (every image here 1.07..2.2, mean 1.6; the random
    VGG16's mean is 1.05-1.2 with some images below 1), so the test uses AlexNet at 32 px."""
    g = torch.Generator().manual_seed(0)
    x = F.interpolate(torch.rand(8, 3, 4, 4, generator=g), size=(32, 32), mode="bilinear", align_corners=False)
    for i in range(8):                                        # smooth colour fields plus three sharp squares
        for _ in range(3):
            a, b = torch.randint(0, 16, (2,), generator=g).tolist()
            x[i, :, a:a + 8, b:b + 8] = torch.rand(3, 1, 1, generator=g)
    blurred = F.conv2d(F.pad(x, (3,) * 4, mode="reflect"), gaussian_window(7, 1.5).float().expand(3, 1, 7, 7),
                       groups=3)
    mse = (blurred - x).pow(2).mean((1, 2, 3))
    noisy = x + torch.randn(x.shape, generator=g) * mse.sqrt().view(-1, 1, 1, 1)
    mse_ratio = mse / (noisy - x).pow(2).mean((1, 2, 3))
    lpips_ratio = nets["alex"](x, blurred) / nets["alex"](x, noisy)
    assert (mse_ratio - 1).abs().max() < 0.05
    assert (lpips_ratio > 1).all() and lpips_ratio.mean() > 1.3, lpips_ratio


def test_the_network_holds_torchvisions_keys_and_stays_frozen():
    vgg, alex = LPIPS("vgg"), LPIPS("alex")
    assert "features.28.weight" in vgg.state_dict() and "features.10.weight" in alex.state_dict()
    assert not any(p.requires_grad for p in vgg.parameters())
    assert not vgg.train().training


def test_missing_or_wrong_files_are_refused_naming_the_file_and_the_source(backbones, tmp_path):
    assert "vgg16-397923af.pth" in unavailable("vgg", None) and "--set lpips.backbone" in unavailable("vgg", None)
    with pytest.raises(VaekitError, match="vgg-random.pth does not fit: .*missing.*alexnet-owt-7be5be79.pth"):
        load_lpips("alex", str(backbones["vgg"]))             # VGG16's keys for AlexNet
    with pytest.raises(VaekitError, match=r"alex-random.pth does not fit.*vgg16-397923af.pth"):
        load_lpips("vgg", str(backbones["alex"]))             # AlexNet's keys for VGG16: missing keys
    shapes = random_backbone("alex", 0)
    shapes["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(shapes, tmp_path / "shapes.pth")
    with pytest.raises(VaekitError, match=r"shapes.pth does not fit: wrong shapes: features.0.weight.*alexnet-owt"):
        load_lpips("alex", str(tmp_path / "shapes.pth"))
    (tmp_path / "code.pth").write_bytes(pickle.dumps(Exploit(tmp_path / "ran")))
    with pytest.raises(VaekitError, match=r"code.pth could not be read.*nothing in it was run.*alexnet-owt"):
        load_lpips("alex", str(tmp_path / "code.pth"))
    assert not (tmp_path / "ran").exists()
    with pytest.raises(VaekitError, match=r"lin file .*alex-random.pth does not fit.*weights/v0.1/vgg.pth"):
        load_lpips("vgg", str(backbones["vgg"]), lin=str(backbones["alex"]))
    with pytest.raises(VaekitError, match="at least 31 x 31 pixels, got 16 x 16"):
        LPIPS("alex")(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


class Exploit:
    """A pickle that would create a file when unpickled."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))
