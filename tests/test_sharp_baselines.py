"""benchmarks/sharp_baselines.py's options, budget, table and figure, without training (the script itself is slow)."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from sharp_baselines import ADVERSARIAL, MODELS, draw, markdown, metric_options, parse_args, train_options  # noqa: E402


def test_every_model_gets_the_same_budget_and_the_adversarial_ones_start_at_a_third():
    args = parse_args(["--epochs", "2", "--batch-size", "8", "--seed", "3"])
    assert args.models.split(",") == list(MODELS)
    for name in MODELS:
        options = train_options(name, args, steps=90)
        assert (options["epochs"], options["batch_size"], options["seed"]) == (2, 8, 3)
        assert options.get("disc_start") == (30 if name in ADVERSARIAL else None)
    assert train_options("autoencoder-kl-small", args, 90)["discriminator"] == "none"


@pytest.mark.parametrize("argv", [["--models", "vae,nope"], ["--disc-start", "1.5"]])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert "error:" in capsys.readouterr().err


def test_weights_files_reach_the_metrics_only_when_given():
    assert metric_options(parse_args([])) == {}
    given = metric_options(parse_args(["--lpips-backbone", "vgg.pth", "--fid-weights", "inc.pth"]))
    assert given == {"lpips": {"backbone": "vgg.pth"}, "rfid": {"weights": "inc.pth"}}


def test_table_lists_missing_metrics_with_their_reason_and_the_discriminator_start():
    row = dict(model="vqgan-small", options={"recipe": "vqgan-small", "disc_start": 30}, parameters=1234,
               latent=[16, 16, 16], psnr=20.5, ssim=0.61, lpips=None, rfid=None, wall_s_per_step=2.0,
               cpu_s_per_step=1.5, unavailable={"lpips": "no VGG16 file", "rfid": "no Inception file"})
    text = markdown({"command": "python benchmarks/sharp_baselines.py", "budget": "90 steps", "load_1min": 3.0,
                     "done": "1 of 5 models", "rows": [row]})
    assert "90 steps; 1 of 5 models done; load average 3.0" in text
    assert "| vqgan-small | 1,234 | 16x16x16 | 20.50 | 0.610 | n/a | n/a | 2.00 | 1.50 |" in text
    assert "lpips unavailable: no VGG16 file" in text and "rfid unavailable: no Inception file" in text
    assert "vqgan-small from step 30" in text


def test_figure_has_the_originals_row_and_one_row_per_model(tmp_path):
    originals = torch.rand(3, 3, 16, 16)
    path = draw(originals, {"a": originals * 0.5, "b": originals + 2.0}, tmp_path / "fig.png", "title")
    with Image.open(path) as im:
        width, height = im.size
    assert height > 3 * 64 and width > 3 * 64  # 16 px cells are enlarged to 64
    assert np.asarray(Image.open(path)).ndim == 3
