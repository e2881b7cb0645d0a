"""--help at 80 columns: nothing cut, booleans as flags, the long lists left to `vaekit models`."""
import json

import pytest


@pytest.fixture
def help_text(capsys, monkeypatch):
    """``vaekit ARGS --help`` as printed in a terminal 80 columns wide."""
    from conftest import run_cli

    monkeypatch.setenv("COLUMNS", "80")

    def text(*args):
        code, out, err = run_cli([*args, "--help"], capsys)
        assert code == 0, err
        return out
    return text


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["compare"], ["plot"], ["models"]])
def test_help_fits_80_columns_without_cutting_anything(command, help_text):
    text = help_text(*command)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text and "<bool>" not in text


def test_train_help_points_to_vaekit_models_for_the_long_lists(help_text):
    text = help_text("train")
    assert "listed by `vaekit models`" in text and "`vaekit models --parts` lists them" in text
    assert "categorical-vae" not in text and "rae-gp" not in text          # 38 models, 39 recipes: not listed
    assert "One of: adam, adamw, rmsprop, sgd." in " ".join(text.split())  # short lists stay
    assert "--resume " in text and "--plots / --no-plots" in text


def test_models_parts_lists_every_registered_name(capsys):
    from conftest import run_cli
    from vaekit.registry import OBJECTIVES, PRIORS

    code, out, _ = run_cli(["models", "--parts"], capsys)
    assert code == 0
    lines = dict(line.split(": ", 1) for line in out.splitlines())  # one line per option
    assert lines["--objective"].split(", ") == OBJECTIVES.names() and lines["--prior"].split(", ") == PRIORS.names()
    code, out, _ = run_cli(["models", "--parts", "--json"], capsys)
    assert json.loads(out)["--optimizer"] == ["adam", "adamw", "rmsprop", "sgd"]
