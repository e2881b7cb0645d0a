"""Runs on the Hugging Face Hub: ``vaekit push RUN ORG/NAME`` and ``vaekit.open_run("hf://ORG/NAME")``.

A run directory is a Hub model repository as it is (config.json, safetensors weights, the
README.md model card of :mod:`vaekit.app.card`). Pushing sends what a user of the model needs
and not the training state (``state.pt``, kept for ``--resume``) unless asked. Loading goes
through ``huggingface_hub.snapshot_download``, so its cache, ``HF_HOME``/``HF_HUB_CACHE``,
``HF_HUB_OFFLINE=1`` and tokens behave as in every other Hub library. ``huggingface_hub`` is
the optional extra ``vaekit[hub]``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

from . import rundir
from .errors import VaekitError

PREFIX = "hf://"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
# what a user of the model needs: weights, config, card, numbers, curves, pictures, fitted samplers
SHARED = (rundir.CONFIG, rundir.WEIGHTS, rundir.BEST, rundir.CARD, rundir.EVALUATION, rundir.METRICS)


def hub_library():
    """The ``huggingface_hub`` module, or a one-line error naming the extra to install."""
    try:
        import huggingface_hub
    except ImportError:
        raise VaekitError("the Hugging Face Hub needs the huggingface_hub package: pip install 'vaekit[hub]'") \
            from None
    return huggingface_hub


def is_hub_path(path) -> bool:
    return isinstance(path, str) and path.startswith(PREFIX)


def parse_repo(text: str, what: str = "the repository") -> tuple:
    """``"hf://ORG/NAME@rev"`` or ``"ORG/NAME"`` -> ("ORG/NAME", "rev" or None), checked."""
    repo = text[len(PREFIX):] if text.startswith(PREFIX) else text
    repo, _, revision = repo.partition("@")
    if not REPO_ID.match(repo) or ".." in repo:
        raise VaekitError(f"{what} {text!r} is not a Hub repository id; write ORG/NAME (hf://ORG/NAME to load)")
    return repo, revision or None


def push_files(run, with_state: bool = False) -> List[str]:
    """The run's files a push sends, as paths inside the repository, sorted."""
    run = Path(run)
    names = [n for n in SHARED if (run / n).is_file()]
    names += [f"{rundir.STATE}"] if with_state and (run / rundir.STATE).is_file() else []
    for folder, pattern in ((rundir.PLOTS, "*.png"), (rundir.SAMPLERS, "*")):
        names += [f"{folder}/{p.name}" for p in (run / folder).glob(pattern) if p.is_file()
                  and not rundir.is_stale_temp(p) and not p.name.startswith(".")]
    return sorted(names)


def push_operations(run, with_state: bool = False) -> list:
    """The ``CommitOperationAdd`` of every file :func:`push_files` names."""
    hub = hub_library()
    run = rundir.require_run(run)
    return [hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(Path(run) / name))
            for name in push_files(run, with_state)]


def push(run, repo: str, with_state: bool = False, private: bool = False, token: Optional[str] = None) -> str:
    """Create ``repo`` (ORG/NAME) if needed and upload the run in one commit; returns the commit's URL."""
    hub = hub_library()
    repo_id, revision = parse_repo(repo)
    operations = push_operations(run, with_state)
    if rundir.training_now(run):
        raise VaekitError(f"run {run} is still training; push it when it is done (its weights change every epoch)")
    api = hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.create_commit(repo_id, operations, commit_message=f"vaekit push of {Path(run).name}",
                                 revision=revision)
    except Exception as e:  # offline mode, no network, no token, no rights: huggingface_hub's own errors
        first = str(e).strip().splitlines()[0].rstrip(".") if str(e).strip() else type(e).__name__
        raise VaekitError(f"could not push {run} to {repo_id}: {first}; check the network, your token "
                          "(huggingface-cli login or --token) and the repository id") from None
    return getattr(info, "commit_url", str(info))


def download(path: str) -> Path:
    """The local folder of the Hub run ``hf://ORG/NAME[@revision]``, from the cache or the network."""
    hub = hub_library()
    repo_id, revision = parse_repo(path)
    patterns = list(SHARED) + [f"{rundir.PLOTS}/*", f"{rundir.SAMPLERS}/*"]
    try:
        folder = Path(hub.snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except Exception as e:  # not in the cache while offline, no such repository, no network
        first = str(e).strip().splitlines()[0].rstrip(".") if str(e).strip() else type(e).__name__
        raise VaekitError(f"could not load {path} from the Hugging Face Hub: {first}") from None
    if not (folder / rundir.CONFIG).is_file():
        raise VaekitError(f"{path} is not a vaekit run: it has no {rundir.CONFIG}; push one with vaekit push")
    return folder
