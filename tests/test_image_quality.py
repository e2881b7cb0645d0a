"""Image-quality metrics of reconstructions (vaekit/evaluate/image_quality.py): psnr, ssim, lpips, rfid."""
from __future__ import annotations

import json
import math

import pytest
import torch

from vaekit.app.evaluations import finite_or_null, metric_options
from vaekit.data.types import TensorData
from vaekit.errors import VaekitError
from vaekit.evaluate import EvalContext, compute_metrics
from vaekit.evaluate.recon import psnr_db as psnr
from vaekit.evaluate.inception import FIDInceptionV3
from vaekit.nn.lpips_weights import random_backbone, shipped_lin
from vaekit.registry import METRICS


def test_psnr_of_an_image_with_itself_is_infinite_and_is_written_as_such():
    x = torch.rand(3, 3, 16, 16)
    assert torch.isinf(psnr(x, x)).all() and (psnr(x, x) > 0).all()
    written = finite_or_null({"psnr": float(psnr(x, x).mean()), "ssim": 1.0})
    assert written["psnr"] == "inf" and written["nonfinite"] == ["psnr"] and float(written["psnr"]) == math.inf
    json.dumps(written, allow_nan=False)                       # valid JSON


def test_psnr_against_gaussian_noise_is_ten_log10_of_one_over_its_variance():
    """E[MSE] = s^2 for x + N(0, s^2): PSNR = 10 log10(1 / s^2) = 20 dB at s = 0.1. Each image's MSE of
    3072 values has a relative spread sqrt(2 / 3072) = 2.6% (0.11 dB); the mean of 64 images, 0.014 dB."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 32, 32, generator=g)
    s = 0.1
    got = float(psnr(x, x + s * torch.randn(x.shape, generator=g)).mean())
    assert got == pytest.approx(10 * math.log10(1 / s ** 2), abs=0.05)
    assert float(psnr(2 * x, 2 * x + s * torch.randn(x.shape, generator=g), data_range=2).mean()) == \
        pytest.approx(10 * math.log10(4 / s ** 2), abs=0.05)


@pytest.fixture(scope="module")
def image_model():
    """An untrained small conv VAE for 3 x 16 x 16 images, and 12 random images."""
    from vaekit.app.options import apply_options, base_config
    from vaekit.models import build_model

    cfg = apply_options(base_config(), {"model": "vae", "network": "conv", "widths": [8, 16], "dense": 16,
                                        "latent_dim": 4, "likelihood": "bernoulli"})
    cfg.model.data_shape = [3, 16, 16]
    torch.manual_seed(0)
    data = TensorData(torch.rand(12, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    return build_model(cfg.model), data


def test_psnr_ssim_and_lpips_of_a_models_reconstructions(image_model, tmp_path):
    model, data = image_model
    backbone = tmp_path / "vgg.pth"
    torch.save(random_backbone("vgg", 0), backbone)
    names = ["psnr", "ssim"] + (["lpips"] if shipped_lin("vgg") else [])
    got = compute_metrics(model, data, names, {"lpips": {"backbone": str(backbone)}}, ctx=EvalContext())
    with torch.no_grad():
        x_hat = model.reconstruct(data.x).clamp(0, 1)
    assert got["psnr"] == pytest.approx(float(psnr(data.x, x_hat).mean()), rel=1e-6) and 0 < got["psnr"] < 30
    assert -1 <= got["ssim"] < 1 and got["ssim_window"] == 11
    if shipped_lin("vgg"):
        assert got["lpips"] > 0 and got["lpips_net"].startswith("vgg (vgg.pth")


def test_lpips_and_rfid_say_why_they_cannot_run_without_weights(image_model, tmp_path):
    model, data = image_model
    with pytest.raises(VaekitError, match=r"LPIPS needs the vgg backbone weights.*vgg16-397923af.pth.*lpips.backbone"):
        compute_metrics(model, data, ["lpips"])
    with pytest.raises(VaekitError, match="rfid .*Inception weights file"):
        compute_metrics(model, data, ["rfid"])
    assert METRICS.build("lpips", {"backbone": "/nowhere/vgg16.pth"}).unavailable(model, data, EvalContext()) == \
        "LPIPS: the backbone weights file /nowhere/vgg16.pth does not exist (expected torchvision's " \
        "vgg16-397923af.pth (https://download.pytorch.org/models/vgg16-397923af.pth))"
    torch.save({}, tmp_path / "empty.pth")
    small = METRICS.build("lpips", {"backbone": str(tmp_path / "empty.pth")})
    assert small.unavailable(model, TensorData(torch.rand(2, 3, 8, 8)), EvalContext()).endswith(
        "needs images of at least 16 x 16 pixels; these are 8 x 8") or shipped_lin("vgg") is None
    table = TensorData(torch.rand(12, 5))
    with pytest.raises(VaekitError, match="psnr .*needs images"):
        compute_metrics(model, table, ["psnr"])


def test_rfid_compares_reconstructions_with_the_images_in_inception_features(image_model, tmp_path):
    model, data = image_model
    torch.manual_seed(0)
    path = tmp_path / "inception.pth"
    torch.save(FIDInceptionV3().state_dict(), path)
    options = metric_options([], str(path), ["rfid"])
    assert options == {"rfid": {"weights": str(path)}}        # --fid-weights reaches rfid when rfid is computed
    options["rfid"].update(n=2, k=1)
    got = compute_metrics(model, data, ["rfid"], options, ctx=EvalContext())
    assert got["rfid"] > 0 and got["rfid_n"] == 2 and "pytorch-fid preprocessing" in got["rfid_features"]
    assert set(metric_options([], str(path), ["fid"])) == {"fid"}
