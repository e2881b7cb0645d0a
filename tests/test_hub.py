"""The model card (RUN/README.md), `vaekit push` and loading runs from the Hugging Face Hub.

No network reaches the Hub here: the card is read back with huggingface_hub's own parser, the
push is checked up to the commit it would send (its operations) and refused offline with a clear
error, and hf://ORG/NAME is loaded from a Hub cache folder laid out as huggingface_hub lays it out,
with HF_HUB_OFFLINE=1, through the real snapshot_download.
"""
from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from conftest import run_cli

hub = pytest.importorskip("huggingface_hub", reason="huggingface_hub is the vaekit[hub] extra, which make test installs")


@pytest.fixture
def run(mlp_run, tmp_path):
    """A copy of the session's 2-epoch MLP run, which these tests may write into."""
    return Path(shutil.copytree(mlp_run, tmp_path / "mlp"))


def card_of(path: Path):
    return hub.ModelCard((path / "README.md").read_text(encoding="utf-8"))


def test_training_writes_a_card_the_hub_reads(run):
    card = card_of(run)
    assert card.data.library_name == "vaekit"
    assert {"vaekit", "variational-autoencoder", "vae", "mlp"} <= set(card.data.tags)
    assert card.data.datasets == ["digits"]
    text = card.text
    assert "# mlp" in text and "Kingma & Welling 2014" in text
    assert "vaekit train --data digits --recipe mlp" in text and "trained: 2 of 2 epochs" in text
    assert ("Not evaluated yet" in text) == (not (run / "evaluation.json").exists())  # the shared run may be
    assert 'vaekit.open_run("mlp")' in text


def test_evaluate_and_plots_rewrite_the_card(run, capsys):
    code, _, err = run_cli(["evaluate", run, "--metrics", "elbo,recon"], capsys)
    assert code == 0, err
    card = card_of(run)
    saved = next(iter(json.loads((run / "evaluation.json").read_text()).values()))
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["elbo"] == pytest.approx(saved["elbo"]) and "recon" in results
    assert "| elbo |" in card.text and "Not evaluated yet" not in card.text
    code, _, err = run_cli(["plot", run, "samples"], capsys)
    assert code == 0, err
    assert "![samples](plots/samples.png)" in card_of(run).text


@pytest.mark.parametrize("recipe, options, sets", [
    (None, {"model": "beta-vae", "latent_dim": 3, "epochs": 7}, ["train.lr=0.003"]),
    ("conv", {"widths": [4, 8], "beta": 2.0}, ["model.prior.name=mog", "model.prior.args.components=3"]),
    ("mlp", {"model": "iwae", "hidden": [16, 16]}, ["train.objective.args.k=3", "data.val_fraction=0.2"]),
])
def test_the_cards_command_builds_the_same_config(recipe, options, sets):
    """The card's command, read back as the CLI reads it, gives the config it was written from."""
    from vaekit.app.card import reproduce_command
    from vaekit.app.options import BY_NAME, apply_options, base_config

    cfg = apply_options(base_config(recipe), dict(options, data="digits"), sets)
    words = shlex.split(reproduce_command(cfg))
    assert words[:2] == ["vaekit", "train"]
    flags, again_sets = {}, []
    for flag, value in zip(words[2::2], words[3::2]):
        if flag == "--set":
            again_sets.append(value)
        else:  # as the CLI reads the option: a value of its type
            name = flag[2:].replace("-", "_")
            flags[name] = value if name in ("recipe", "data") else BY_NAME[name].type(value)
    assert "--epochs" in words or "epochs" not in options
    again = apply_options(base_config(flags.pop("recipe", None)), flags, again_sets)
    assert again.to_dict() == cfg.to_dict()


def test_push_sends_what_a_user_needs(run, capsys):
    from vaekit.hub import push_files, push_operations

    shutil.rmtree(run / "plots", ignore_errors=True)  # this test's own pictures only
    (run / "plots").mkdir()
    (run / "plots" / "samples.png").write_bytes(b"\x89PNG")
    (run / "plots" / ".samples.png.x1.tmp").write_bytes(b"")   # a temp file a crash left behind
    (run / "notes.txt").write_text("mine")                      # the user's own file: not theirs to publish
    files = push_files(run)
    present = [n for n in ("README.md", "config.json", "best.safetensors", "evaluation.json", "metrics.jsonl",
                           "model.safetensors") if (run / n).is_file()]  # the shared run may have been evaluated
    assert files == sorted(present + ["plots/samples.png"]) and "README.md" in files
    assert "state.pt" in push_files(run, with_state=True)
    ops = push_operations(run)
    assert [op.path_in_repo for op in ops] == files
    assert all(isinstance(op, hub.CommitOperationAdd) and Path(op.path_or_fileobj).is_file() for op in ops)


def test_push_without_the_hub_is_one_clear_line(run, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    code, out, err = run_cli(["push", run, "my-org/digits-vae"], capsys)
    assert code == 2 and err.startswith("error: could not push") and "Traceback" not in err
    assert run_cli(["push", run, "not a repo"], capsys)[2].startswith("error: the repository 'not a repo'")


def hub_cache(run: Path, root: Path, repo: str) -> Path:
    """A Hub cache holding ``run`` as the snapshot of ``repo``'s main branch, laid out as huggingface_hub
    lays out what it downloads (models--ORG--NAME/refs/main and snapshots/COMMIT/)."""
    from vaekit.hub import push_files

    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    for name in push_files(run):
        target = folder / "snapshots" / commit / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(run / name, target)
    return root


def test_open_run_from_the_hub_offline(run, tmp_path, monkeypatch):
    import vaekit

    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 sets it
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(hub_cache(run, tmp_path / "hub", "my-org/digits-vae")))
    r = vaekit.open_run("hf://my-org/digits-vae")
    assert (r.config.model.variant, r.config.recipe, r.dir.parent.name) == ("vae", "mlp", "snapshots")
    assert vaekit.load("hf://my-org/digits-vae@main").sample(3).shape[0] == 3
    with pytest.raises(vaekit.VaekitError, match="^could not load hf://my-org/other from the Hugging Face Hub"):
        vaekit.open_run("hf://my-org/other")
    with pytest.raises(vaekit.VaekitError, match="is not a Hub repository id"):
        vaekit.load("hf://../../etc")
