"""Named colour datasets: ``patches`` (crops of the photographs shipped in installed packages, split by
photo) and ``shapes-color`` (shapes with a colour factor)."""
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from vaekit.data import load_data
from vaekit.data.builtin import canonical_name
from vaekit.data.patches import _read_rgb, photo_files
from vaekit.data.shapes import COLORS, ColorShapesGroundTruth, ground_truth_for
from vaekit.errors import VaekitError


def found_in(crop: torch.Tensor, photo: np.ndarray) -> bool:
    """Whether ``crop`` (3, S, S) in [0, 1] is a window of ``photo`` (H, W, 3) in 0..255."""
    side = crop.shape[-1]
    target = np.rint(crop.numpy().transpose(1, 2, 0) * 255)
    windows = sliding_window_view(photo, (side, side), axis=(0, 1))  # (H', W', 3, S, S), no copy
    first = np.all(windows[:, :, :, 0, 0] == target[0, 0], axis=-1)  # candidates by their corner pixel
    return any(np.array_equal(windows[r, c].transpose(1, 2, 0), target) for r, c in zip(*np.nonzero(first)))


def test_patches_split_by_photo_and_repeat_from_the_seed():
    s = load_data("patches-16-n200")
    photos = {f.name: _read_rgb(f) for f in photo_files()}
    train_photos, test_photos = s.info.extra["photos"]["train"], s.info.extra["photos"]["test"]
    assert not set(train_photos) & set(test_photos) and set(train_photos) | set(test_photos) == set(photos)
    assert s.info.shape == (3, 16, 16) and len(s.test) == 40 and len(s.train) + len(s.val) == 160
    for crop in s.test.x[:2]:
        assert any(found_in(crop, photos[p]) for p in test_photos)
        assert not any(found_in(crop, photos[p]) for p in train_photos)
    for crop in s.train.x[:2]:
        assert any(found_in(crop, photos[p]) for p in train_photos)
        assert not any(found_in(crop, photos[p]) for p in test_photos)
    again, other = load_data("patches-16-n200"), load_data("patches-16-n200-seed1")
    assert torch.equal(again.train.x, s.train.x) and not torch.equal(other.test.x, s.test.x)


def test_patches_names():
    assert canonical_name("Patches") == "patches" and canonical_name("patches-32-n5000") == "patches"
    assert canonical_name("patches-64") == "patches-64" and canonical_name("patches_16_n200") == "patches-16-n200"
    with pytest.raises(VaekitError, match="crop side must be between 8 and 256"):
        load_data("patches-4")


def test_shapes_color_draws_each_sprite_in_its_colour():
    s = load_data("shapes-color-300")
    assert s.info.shape == (3, 64, 64) and s.info.extra["factor_names"][-1] == "color"
    assert canonical_name("shapes-colour-300") == "shapes-color-300"
    truth = ground_truth_for("shapes-color-300")
    assert isinstance(truth, ColorShapesGroundTruth) and truth.factor_sizes[-1] == len(COLORS)
    factors = s.train.factors.numpy()[:20]
    images = s.train.x[:20].numpy()
    assert np.array_equal(truth.render(factors), images)
    for img, f in zip(images, factors):
        on = img.max(axis=0) > 0
        assert on.any() and np.array_equal(img[:, on], np.repeat(COLORS[int(f[5])][:, None], on.sum(), axis=1))


def test_shapes_px_suffix_averages_blocks_of_the_64_px_sprites():
    assert canonical_name("shapes-color-300-seed0-px64") == "shapes-color-300"
    assert canonical_name("shapes_colour_300_px32") == "shapes-color-300-px32"
    truth, small = ground_truth_for("shapes-color"), ground_truth_for("shapes-color-px16")
    factors = truth.sample_factors(6, np.random.default_rng(1))
    big = truth.render(factors)
    expected = big.reshape(6, 3, 16, 4, 16, 4).mean(axis=(3, 5))  # each 16 px pixel: the mean of a 4 x 4 block
    np.testing.assert_allclose(small.render(factors), expected, atol=1e-7)
    s = load_data("shapes-color-100-px32")
    assert s.info.shape == (3, 32, 32) and 0 < float(s.train.x.sum()) < s.train.x.numel()
    with pytest.raises(VaekitError, match="come at 64, 32, 16 px, got 24"):
        load_data("shapes-100-px24")
