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
