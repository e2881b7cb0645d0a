"""Image folders as users have them: mixed sizes and modes through one saved transform, augmentation of
the training split that resumes bit for bit, and the same transform for new images in encode, evaluate
and reconstruct."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from vaekit.data import load_data
from vaekit.data.augment import Augment
from vaekit.data.batching import iterate_batches
from vaekit.errors import VaekitError
from vaekit.objectives import elbo as elbo_module

from conftest import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from kill_resume import differences  # noqa: E402  (every bit of two finished runs)

MODES = ("L", "RGB", "RGBA", "P", "LA")
TRAIN = dict(hidden=[16], latent_dim=2, batch_size=8, progress=False, seed=3, image_size=16, channels=3)


def image_folder(folder: Path, n: int, sizes=(14, 30), seed: int = 0, modes=MODES) -> Path:
    """``n`` random images of sizes and modes that differ, half PNG, half JPEG (JPEG takes no alpha)."""
    g = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = (int(v) for v in g.integers(*sizes, 2))
        im = Image.fromarray(g.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(modes[i % len(modes)])
        if i % 2 and im.mode in ("L", "RGB"):
            im.save(folder / f"{i:03d}.jpg", quality=90)
        else:
            im.save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return image_folder(tmp_path_factory.mktemp("img") / "photos", 40)


# -- the deterministic transform ---------------------------------------------------------------------------
def test_mixed_sizes_without_a_transform_name_both_options(photos):
    with pytest.raises(VaekitError, match="differ in size or color mode") as e:
        load_data(str(photos))
    assert "--image-size" in str(e.value) and "--channels 1 or 3" in str(e.value)


def test_resize_scales_the_shorter_side_and_crops_the_centre(tmp_path):
    """A 10x20 image, black, white in columns 5..14: scaled by 1 and centre-cropped to 10x10, it is all white;
    as 10x4 (HxW) the middle four columns; at 5x5 (scaled by 1/2, antialiased) white inside, the edge
    columns blended with the black just outside the crop."""
    arr = np.zeros((10, 20), np.uint8)
    arr[:, 5:15] = 255
    for name in "abcde":  # five: one for the test split
        Image.fromarray(arr).save(tmp_path / f"{name}.png")
    for size, shape in ((10, (1, 10, 10)), ("10x4", (1, 10, 4)), (5, (1, 5, 5))):
        s = load_data(str(tmp_path), image_size=size, val_fraction=0)
        assert s.info.shape == shape and s.info.extra["transform"]["size"] == list(shape[1:])
        inside = s.test.x[..., 1:-1] if size == 5 else s.test.x
        assert torch.all(inside == 1.0) and torch.all(s.test.x > 0.5)
    tall = load_data(str(tmp_path), image_size="20x10", val_fraction=0).test.x[0, 0]  # scaled by 2: 20x40 -> middle
    assert tall.shape == (20, 10) and torch.all(tall == 1.0)


def test_channels_convert_grey_and_colour(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), (255, 0, 0), np.uint8)).save(tmp_path / f"red{i}.png")
        Image.fromarray(np.full((8, 8), 51, np.uint8)).save(tmp_path / f"grey{i}.png")
    grey = load_data(str(tmp_path), channels=1, val_fraction=0)
    assert grey.info.shape == (1, 8, 8)
    values = sorted({float(v) for v in torch.cat([grey.train.x, grey.test.x])[:, 0, 0, 0]})
    assert values == pytest.approx([51 / 255, 76 / 255])  # red by ITU-R 601-2 luma: 255 * 299 / 1000 = 76
    colour = load_data(str(tmp_path), channels=3, val_fraction=0)
    x = torch.cat([colour.train.x, colour.test.x])
    assert colour.info.shape == (3, 8, 8)
    assert any(torch.all(img == 51 / 255) for img in x) and any(torch.all(img[0] == 1) and torch.all(img[1:] == 0)
                                                                for img in x)


def test_a_transform_is_only_for_image_folders():
    with pytest.raises(VaekitError, match="apply to a folder of image files, but 'digits' is not one"):
        load_data("digits", image_size=8)


@pytest.mark.parametrize("option, value, message", [
    ("image_size", "0", "--image-size takes a size S"), ("image_size", "8x", "--image-size takes"),
    ("channels", 2, "--channels takes 1 \\(grey\\) or 3"), ("augment", "flip,rotate", "--augment takes"),
])
def test_bad_image_options_are_refused_before_anything_is_written(tmp_path, photos, option, value, message):
    with pytest.raises(VaekitError, match=message):
        vaekit.train(str(photos), out=tmp_path / "run", epochs=1, **{**TRAIN, option: value})
    assert not (tmp_path / "run").exists()


def test_the_saved_transform_applies_to_new_images_through_the_cli(tmp_path, photos, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", photos, "--out", run, "--epochs", "1", "--hidden", "16",
                            "--batch-size", "8", "--image-size", "16", "--channels", "3", "--no-progress", "--no-plots"], capsys)
    assert code == 0, err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["image_size"] == [16, 16] and cfg["data"]["channels"] == 3
    assert cfg["data_info"]["extra"]["transform"] == {"size": [16, 16], "channels": 3}
    others = image_folder(tmp_path / "others", 12, sizes=(20, 48), seed=1, modes=("L", "P"))  # grey, larger
    code, _, err = run_cli(["encode", run, "--data", others, "--split", "test", "--out", tmp_path / "z.npy"], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "z.npy").shape == (2, 16)  # the test split: 20% of 12 images; latent 16
    code, out, err = run_cli(["evaluate", run, "--data", others, "--metrics", "elbo", "--json"], capsys)
    assert code == 0, err
    assert np.isfinite(json.loads(out)["elbo"])
    code, _, err = run_cli(["reconstruct", run, "--data", others, "--n", "2", "--npy", tmp_path / "r.npy"], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "r_original.npy").shape == (2, 3, 16, 16)


# -- augmentation -----------------------------------------------------------------------------------------
def test_augment_flips_and_shifts_with_reflected_borders():
    x = torch.rand(64, 2, 16, 12)
    out = Augment(["flip", "crop"])(x, seed=7, batch=3)
    pad = 2  # round(12 / 8)
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="reflect")
    for i in range(len(x)):
        windows = [p[:, r:r + 16, c:c + 12] for p in (padded[i], padded[i].flip(-1))
                   for r in range(2 * pad + 1) for c in range(2 * pad + 1)]
        assert sum(torch.equal(out[i], w) for w in windows) >= 1
    flipped = Augment(["flip"])(x, seed=7, batch=3)
    kept = [torch.equal(flipped[i], x[i]) for i in range(len(x))]
    assert all(kept[i] or torch.equal(flipped[i], x[i].flip(-1)) for i in range(len(x)))
    assert 16 < sum(kept) < 48  # about half flipped
    assert torch.equal(Augment(["crop"])(x, 7, 3), Augment(["crop"])(x, 7, 3))
    assert not torch.equal(Augment(["crop"])(x, 7, 3), Augment(["crop"])(x, 7, 4))


def test_augmentation_reaches_only_shuffled_training_batches(photos):
    s = load_data(str(photos), image_size=16, channels=3, augment="flip,crop")
    assert s.val.augment is None and s.test.augment is None
    assert s.train.subset(torch.arange(4)).augment is None  # plots and metrics see plain images
    plain = torch.cat([x for x, _ in iterate_batches(s.train, 8)])
    assert torch.equal(plain, s.train.x)
    g = torch.Generator().manual_seed(0)
    aug = torch.cat([x for x, _ in iterate_batches(s.train, 8, shuffle=True, generator=g)])
    order = torch.randperm(len(s.train), generator=torch.Generator().manual_seed(0))
    assert not torch.equal(aug, s.train.x[order])


def test_each_rank_augments_its_rows_as_one_process_would(photos):
    s = load_data(str(photos), image_size=16, channels=3, augment="flip,crop")
    draw = lambda shard: [x for x, _ in iterate_batches(s.train, 8, shuffle=True,  # noqa: E731
                                                        generator=torch.Generator().manual_seed(1), shard=shard)]
    one, r0, r1 = draw((0, 1)), draw((0, 2)), draw((1, 2))
    for whole, a, b in zip(one, r0, r1):
        assert torch.equal(whole[0::2], a) and torch.equal(whole[1::2], b)


def crash_at(monkeypatch, at):
    """A crash the trainer does not catch on the ``at``-th objective call."""
    real = elbo_module.ELBO.__call__
    calls = {"n": 0}

    def call(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(elbo_module.ELBO, "__call__", call)
    return lambda: monkeypatch.setattr(elbo_module.ELBO, "__call__", real)


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
def test_augmented_runs_resume_bit_for_bit(tmp_path, monkeypatch, photos, stream):
    """2 + 1 epochs, and a crash in the middle of epoch 2 resumed, give every bit of 3 epochs."""
    options = dict(TRAIN, augment="flip,crop", stream=stream, workers=2)
    reference = tmp_path / "ref"
    vaekit.train(str(photos), out=reference, epochs=3, **options)
    split = tmp_path / "split"
    vaekit.train(str(photos), out=split, epochs=2, **options)
    vaekit.train(out=split, resume=True, epochs=3, progress=False)
    assert differences(split, reference) == []
    crashed = tmp_path / "crashed"
    restore = crash_at(monkeypatch, 1 + 4 + 1 + 3)  # preflight, epoch 1 (4 steps), its validation, step 3 of epoch 2
    with pytest.raises(KeyboardInterrupt):
        vaekit.train(str(photos), out=crashed, epochs=3, checkpoint_every=2, **options)
    restore()
    state = torch.load(crashed / "state.pt", weights_only=True)
    assert (state["epoch"], state["batch"]) == (1, 2)
    vaekit.train(out=crashed, resume=True, progress=False)
    assert differences(crashed, reference) == []


def test_streamed_and_in_memory_folders_give_the_same_numbers(photos):
    memory = load_data(str(photos), image_size="16x12", channels=1, stream=False)
    streamed = load_data(str(photos), image_size="16x12", channels=1, stream=True, workers=2)
    assert streamed.info == memory.info
    for split in ("train", "val", "test"):
        assert torch.equal(torch.cat(list(getattr(streamed, split).chunks(5))), getattr(memory, split).x)
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    for (a, _), (b, _) in zip(iterate_batches(memory.train, 5, shuffle=True, generator=g()),
                              iterate_batches(streamed.train, 5, shuffle=True, generator=g())):
        assert torch.equal(a, b)
