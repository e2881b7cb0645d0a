"""Bad and unusual image files: each is refused with its name and the fix, left out and listed under
--skip-bad-images, or read by a documented rule (CMYK, 16-bit PNGs, EXIF orientation); never a
traceback and never a silently wrong tensor. Every file is built here with Pillow."""
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.data import load_data
from vaekit.data.batching import iterate_batches
from vaekit.errors import VaekitError

from conftest import run_cli


def good_folder(folder, n=6, size=(8, 8)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("L", size, 40 * i).save(folder / f"good{i}.png")
    return folder


def truncated_jpeg() -> bytes:
    """A JPEG cut after two thirds: its header is whole, its pixels are not."""
    whole = jpeg_bytes((32, 32))
    return whole[:len(whole) * 2 // 3]


def jpeg_bytes(size=(16, 16), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(
        mode).save(buf, format="JPEG")
    return buf.getvalue()


BAD = {
    "truncated.jpg": (truncated_jpeg, "its pixels cannot be decoded: image file is truncated"),
    "empty.png": (lambda: b"", "an empty file (0 bytes)"),
    "notes.jpg": (lambda: b"shopping list: milk, eggs\n" * 20, "not an image Pillow can read"),
    "pixel.png": (lambda: png_of(Image.new("RGB", (1, 1))), "1x1 pixels"),
}


def png_of(im) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name", BAD)
def test_a_bad_file_is_named_with_the_fix_or_left_out_and_listed(tmp_path, name, capsys):
    folder = good_folder(tmp_path / "images")
    make, reason = BAD[name]
    (folder / name).write_bytes(make())
    with pytest.raises(VaekitError) as e:
        load_data(str(folder), image_size=8, channels=1)
    assert f"'{folder / name}'" in str(e.value) and reason in str(e.value) and "--skip-bad-images" in str(e.value)
    s = load_data(str(folder), image_size=8, channels=1, skip_bad_images=True, val_fraction=0)
    assert len(s.train) + len(s.test) == 6
    skipped = s.info.extra["skipped_images"]
    assert skipped["count"] == 1 and skipped["files"][0].startswith(f"{folder / name}: ") and reason in \
        skipped["files"][0]
    assert "left out 1 bad image(s)" in capsys.readouterr().err


def test_the_cli_names_the_bad_file_without_a_traceback(tmp_path, capsys):
    folder = good_folder(tmp_path / "images")
    (folder / "truncated.jpg").write_bytes(truncated_jpeg())
    code, _, err = run_cli(["train", "--data", folder, "--image-size", "8", "--channels", "1", "--out", tmp_path / "run", "--epochs", "1"],
                           capsys)
    assert code == 2 and "truncated.jpg" in err and "--skip-bad-images" in err and "Traceback" not in err


def test_a_truncated_file_found_while_streaming_is_named(tmp_path):
    """Headers are read up front; pixels only when a batch is decoded in a worker process."""
    folder = good_folder(tmp_path / "images", n=70)  # the file after the 64 that the quantization check reads
    (folder / "truncated.jpg").write_bytes(truncated_jpeg())
    s = load_data(str(folder), image_size=8, channels=1, stream=True, workers=2, val_fraction=0)
    with pytest.raises(VaekitError, match="truncated.jpg' \\(its pixels cannot be decoded") as e:
        for split in (s.train, s.test):
            list(iterate_batches(split, 4))
    assert "Traceback" not in str(e.value)


def test_every_file_bad_is_refused(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"")
    with pytest.raises(VaekitError, match="every image in .* is bad"):
        load_data(str(folder), skip_bad_images=True)


def test_cmyk_jpegs_become_rgb(tmp_path):
    folder = good_folder(tmp_path / "images", size=(16, 16))
    Image.new("CMYK", (16, 16), (255, 0, 0, 0)).save(folder / "cyan.jpg", quality=95)  # pure cyan
    s = load_data(str(folder), channels=3, val_fraction=0)
    x = torch.cat([s.train.x, s.test.x])
    cyan = [img for img in x if img[0].mean() < 0.1 and img[1].mean() > 0.5]
    assert len(cyan) == 1 and cyan[0][1:].min() > 0.9  # R ~ 0, G and B ~ 1


def png16_rgb(values) -> bytes:
    """A 16-bit RGB PNG (Pillow writes no such file): rows of (r, g, b) 16-bit values."""
    h, w = len(values), len(values[0])
    raw = b"".join(b"\0" + b"".join(struct.pack(">HHH", *px) for px in row) for row in values)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_sixteen_bit_pngs(tmp_path):
    """Grey keeps its 16 bits (value / 65535); colour is read at 8 bits per channel, as Pillow reads it."""
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(5):
        Image.fromarray(np.full((4, 4), 1000 * i + 1, np.uint16)).save(grey / f"{i}.png")
    s = load_data(str(grey), val_fraction=0)
    values = sorted(float(v) for v in torch.cat([s.train.x, s.test.x])[:, 0, 0, 0])
    assert values == pytest.approx([(1000 * i + 1) / 65535 for i in range(5)], rel=1e-6)
    colour = good_folder(tmp_path / "colour", n=4)
    (colour / "deep.png").write_bytes(png16_rgb([[(0x8000, 0xFFFF, 0x0000)] * 4] * 4))
    s = load_data(str(colour), image_size=4, channels=3, val_fraction=0)
    deep = [img for img in torch.cat([s.train.x, s.test.x]) if img[1].min() == 1.0]
    assert len(deep) == 1 and torch.all(deep[0][0] == 128 / 255) and torch.all(deep[0][2] == 0)


def test_exif_orientation_is_applied(tmp_path):
    """A 16x8 (WxH) picture stored sideways with EXIF orientation 6 is read as the viewer shows it: 8 wide,
    16 tall, turned a quarter clockwise."""
    folder = tmp_path / "images"
    folder.mkdir()
    arr = np.zeros((8, 16), np.uint8)
    arr[:, :4] = 255  # a white band at the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6
    for i in range(5):
        Image.fromarray(arr).save(folder / f"{i}.png", exif=exif)
    s = load_data(str(folder), val_fraction=0)
    assert s.info.shape == (1, 16, 8)
    expected = torch.from_numpy(np.asarray(Image.fromarray(arr).transpose(Image.Transpose.ROTATE_270)) / 255.0)
    assert torch.equal(s.test.x[0, 0].double(), expected)
    assert torch.all(s.test.x[0, 0, :4] == 1.0)  # the band is now at the top
