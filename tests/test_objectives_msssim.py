"""SSIM and MS-SSIM (Wang et al. 2004, 2003) against known answers and an independent scipy reference,
the MSSSIM-VAE loss by hand, and one epoch of training and evaluation."""
import json

import pytest
import torch
from scipy import ndimage

import vaekit
from vaekit import rundir
from vaekit.data import load_data
from vaekit.errors import VaekitError
from vaekit.models import elbo_terms
from vaekit.objectives.msssim import MSSSIM, WEIGHTS, ms_ssim, plan, ssim, ssim_parts

from conftest import small_model

DIGITS = load_data("digits")
X = DIGITS.train.x[:32]


def images(b=4, c=1, side=32, seed=0):
    """Smooth random images in [0, 1], (B, C, side, side), float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, side // 4, side // 4, generator=g, dtype=torch.float64)
    return torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)


def noisy(x, sigma, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)


def test_an_image_is_perfectly_similar_to_itself():
    x = images()
    torch.testing.assert_close(ssim(x, x), torch.ones(4, dtype=torch.float64))
    big = images(1, side=176).float()                                   # five scales
    torch.testing.assert_close(ms_ssim(big, big), torch.ones(1))


def test_similarity_falls_as_noise_grows():
    x = images()
    for metric in (ssim, lambda a, b: ms_ssim(a, b, window=5, scales=3)):
        scores = [metric(x, noisy(x, s)) for s in (0.02, 0.05, 0.1, 0.2, 0.4)]   # each (B,)
        for hi, lo in zip(scores, scores[1:]):
            assert (lo < hi).all()
    assert (ssim(x, noisy(x, 0.4)) < 0.5).all()


def test_constant_images_by_hand():
    """No variance: the contrast-structure term is C2 / C2 = 1, SSIM is the luminance (2ab + C1) / (a^2 + b^2 + C1)."""
    a, b, c1 = 0.3, 0.7, 0.01 ** 2
    x, y = torch.full((1, 1, 9, 9), a, dtype=torch.float64), torch.full((1, 1, 9, 9), b, dtype=torch.float64)
    full, cs = ssim_parts(x, y, window=5)
    assert float(cs) == pytest.approx(1.0)
    assert float(full) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-12)


def test_one_pixel_window_by_hand():
    """A 1 x 1 window: mu = the pixel, no variance, so SSIM is the mean over pixels of the luminance formula."""
    x, y = images(1, side=8), images(1, side=8, seed=3)
    c1 = 0.01 ** 2
    by_hand = ((2 * x * y + c1) / (x * x + y * y + c1)).mean()
    assert float(ssim(x, y, window=1)) == pytest.approx(float(by_hand), rel=1e-12)


def scipy_ssim(x, y, sigma=1.5, data_range=1.0):
    """SSIM of two 2-D arrays with scipy's Gaussian filter (radius 5 = truncate 3.5 at sigma 1.5, the 11 x 11
    window), population statistics, averaged over the pixels whose window lies inside the image: an
    implementation independent of vaekit's conv2d (it mirrors skimage's gaussian_weights=True)."""
    f = lambda a: ndimage.gaussian_filter(a, sigma, truncate=3.5)  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s[5:-5, 5:-5].mean()


def test_ssim_matches_an_independent_scipy_implementation():
    x = images(3, side=24)
    y = noisy(x, 0.1)
    ours = ssim(x, y)                                                    # (3,)
    for i in range(3):
        assert float(ours[i]) == pytest.approx(scipy_ssim(x[i, 0].numpy(), y[i, 0].numpy()), rel=1e-9)


def test_ssim_matches_skimage_when_installed():
    metrics = pytest.importorskip("skimage.metrics")
    x = images(1, side=24)
    y = noisy(x, 0.1)
    ref = metrics.structural_similarity(x[0, 0].numpy(), y[0, 0].numpy(), gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=1.0)
    assert float(ssim(x, y)[0]) == pytest.approx(ref, rel=1e-6)


def test_plan_shrinks_window_and_scales_to_fit():
    assert plan(8, 8) == (7, [1.0])                                     # digits: one scale, 7 x 7 window
    window, w = plan(32, 32)                                            # 32, 16 >= 11; 8 < 11
    assert window == 11 and w == pytest.approx([0.0448 / 0.3304, 0.2856 / 0.3304])
    assert plan(28, 28, window=7)[1] == pytest.approx([v / sum(WEIGHTS[:3]) for v in WEIGHTS[:3]])
    assert plan(176, 176) == (11, pytest.approx(list(WEIGHTS), rel=1e-3))        # 176 / 16 = 11: all five scales
    assert plan(6, 9, window=11)[0] == 5                                # odd, at most the shorter side


def test_ms_ssim_with_one_scale_is_ssim_and_by_hand_with_three():
    x = images(2, side=40)
    y = noisy(x, 0.15)
    torch.testing.assert_close(ms_ssim(x, y, window=7, scales=1), ssim(x, y, window=7))
    # three scales: cs at the two finest, the full SSIM at the coarsest, exponents renormalised
    w = [v / sum(WEIGHTS[:3]) for v in WEIGHTS[:3]]
    _, cs1 = ssim_parts(x, y, 7)
    pool = torch.nn.functional.avg_pool2d
    _, cs2 = ssim_parts(pool(x, 2), pool(y, 2), 7)
    full3, _ = ssim_parts(pool(x, 4), pool(y, 4), 7)
    torch.testing.assert_close(ms_ssim(x, y, window=7, scales=3), cs1 ** w[0] * cs2 ** w[1] * full3 ** w[2])


def test_invariances():
    x, y = images(3, side=20), images(3, side=20, seed=7)
    torch.testing.assert_close(ssim(x, y), ssim(y, x))                                # symmetric
    perm = torch.tensor([2, 0, 1])
    torch.testing.assert_close(ssim(x[perm], y[perm]), ssim(x, y)[perm])              # per example
    torch.testing.assert_close(ssim(x[:1], y[:1]), ssim(x, y)[:1])                    # alone as in a batch
    # channels alone: three copies of a grey image score like the grey image
    torch.testing.assert_close(ssim(x.expand(3, 3, 20, 20), y.expand(3, 3, 20, 20)), ssim(x, y))
    # the contrast-structure term ignores a common brightness shift
    torch.testing.assert_close(ssim_parts(x * 0.5 + 0.3, y * 0.5 + 0.3)[1], ssim_parts(x * 0.5, y * 0.5)[1])


def test_gradients_stay_finite_for_anticorrelated_images():
    x = images(2, side=32)
    y = (1 - x).clone().requires_grad_(True)                           # negative structure terms
    ms_ssim(x, y, window=5, scales=3).sum().backward()
    assert torch.isfinite(y.grad).all()


def test_loss_by_hand():
    model = small_model("msssim-vae")
    torch.manual_seed(5)
    with torch.no_grad():
        got = MSSSIM(beta=2.0)(model, X)
    torch.manual_seed(5)
    with torch.no_grad():
        out = model(X)
        t = elbo_terms(out, X)
    sim = ssim(X, out.px.mean, window=7)                               # 8 x 8: one scale, 7 x 7 window
    assert float(got.terms["msssim"]) == pytest.approx(float(sim.mean()), rel=1e-6)
    assert float(got.loss) == pytest.approx(float((1 - sim).mean() + 2.0 * t.kl.mean()), rel=1e-6)
    assert float(got.terms["objective"]) == pytest.approx(float(got.loss))            # what best checkpoints follow
    assert float(got.terms["elbo"]) == pytest.approx(float(t.elbo.mean()), rel=1e-6)  # the true bound
    assert {"recon", "kl"} <= set(got.terms)


def test_non_images_and_bad_options_are_refused():
    with pytest.raises(VaekitError, match=r"image data shaped \(C, H, W\).*\(64,\)"):
        MSSSIM()(None, torch.rand(8, 64))
    with pytest.raises(VaekitError, match=r"values in \[0, 1\]"):
        MSSSIM()(None, torch.rand(8, 1, 8, 8) * 3)
    for kw in ({"beta": -1.0}, {"window": 4}, {"scales": 0}, {"scales": 6}):
        with pytest.raises(VaekitError, match="msssim"):
            MSSSIM(**kw)


def test_training_on_a_table_is_refused_before_anything_is_written(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("a,b,c\n" + "\n".join("0.1,0.5,0.9" for _ in range(40)) + "\n")
    with pytest.raises(VaekitError, match="image data"):
        vaekit.train(str(table), model="msssim-vae", epochs=1, out=tmp_path / "run", progress=False, hidden=[8])
    assert not (tmp_path / "run").exists()


def test_variant_trains_with_its_objective(zoo_run):
    """test_contract.py trains and evaluates msssim-vae; here its run was trained with the msssim objective."""
    config = json.loads((zoo_run("msssim-vae") / rundir.CONFIG).read_text())
    assert config["train"]["objective"]["name"] == "msssim"
