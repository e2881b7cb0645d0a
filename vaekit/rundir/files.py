"""A run's own files: their names, atomic writes, config, weights, training state and metrics.

Every file is written to a temp file in the same directory and renamed into place, so a
crash never leaves a half-written checkpoint. Nothing is unpickled: weights are safetensors
and state.pt is read with ``torch.load(weights_only=True)`` (:mod:`vaekit.safe_load`).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from .. import faults
from ..config import RunConfig
from ..errors import VaekitError
from ..safe_load import load_weights_only

CONFIG, WEIGHTS, BEST, STATE, METRICS, PLOTS = (
    "config.json", "model.safetensors", "best.safetensors", "state.pt", "metrics.jsonl", "plots")
RAW = "raw.safetensors"  # with --ema, the weights as trained (model.safetensors and best hold their average)
CHECKPOINTS = {"last": WEIGHTS, "best": BEST, "raw": RAW}
EVALUATION = "evaluation.json"  # what ``vaekit evaluate`` computed, read by ``vaekit compare`` (evaluations.py)
SAMPLERS = "samplers"           # fitted samplers, NAME.json and NAME.safetensors (samplers.py)
TRAINING = "training.json"      # present while a process trains the run (training.py)
CARD = "README.md"              # the model card, in the Hugging Face Hub's format (vaekit/app/card.py)
TRACKERS = "trackers.json"      # the experiment trackers' run ids, continued on resume (vaekit/track/)


# -- atomic files ---------------------------------------------------------------------------
def atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)``, fsync, then rename onto ``path`` (atomic on POSIX). A write that
    fails (a full disk, a read-only directory) leaves ``path`` as it was and raises a VaekitError."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        faults.point("write")  # the SIGKILL test's "killed mid-write" (vaekit/faults.py)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a run's files are ordinary readable files
        os.replace(tmp, path)
    except Exception as e:  # torch.save and safetensors report a full disk as RuntimeError or their own types
        raise VaekitError(write_failure(path, e)) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def is_stale_temp(path: Path) -> bool:
    """A temp file of :func:`atomic_write` that a crash left behind: ``.config.json.k3j9x_2a.tmp``
    beside a run's own files, ``.latent.png.k3j9x_2a.tmp`` in its plots/."""
    name = Path(path).name
    files = (CONFIG, WEIGHTS, BEST, RAW, STATE, METRICS, EVALUATION, TRAINING, CARD, TRACKERS)
    own = name.startswith(tuple(f".{f}." for f in files))
    plot = Path(path).parent.name == PLOTS and name.startswith(".") and ".png." in name
    return name.endswith(".tmp") and (own or plot)


def remove_stale_temps(run: Path) -> None:
    """Delete the temp files of writes a crash cut short in the run directory and its plots/."""
    for folder in (Path(run), Path(run) / PLOTS):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            if is_stale_temp(tmp):
                tmp.unlink(missing_ok=True)


def require_writable(path) -> None:
    """Fail early, before any work, when the run directory ``path`` could not be written."""
    folder = _nearest_existing(Path(path))
    if not os.access(folder, os.W_OK):
        raise VaekitError(write_failure(Path(path) / CONFIG, PermissionError(errno.EACCES, "not writable")))


def make_dir(path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VaekitError(write_failure(path / CONFIG, e)) from None
    return path


def _nearest_existing(path: Path) -> Path:
    return next((p for p in [path, *path.parents] if p.exists()), Path("."))


def write_failure(path: Path, error: BaseException) -> str:
    """Why writing ``path`` failed, and what to do, for the user."""
    folder = _nearest_existing(path.parent)
    code = getattr(error, "errno", None)
    try:
        full = code == errno.ENOSPC or os.statvfs(folder).f_bavail == 0
    except OSError:
        full = False
    kept = f"{path.name} was left as it was" if path.exists() else f"nothing was written to {path}"
    if not folder.is_dir():
        return f"could not write {path}: {folder} is a file, not a directory; {kept}. Choose another path"
    if full:
        return (f"could not write {path}: the disk is full; {kept}. Free some space (or train with another "
                "--out on a disk with room), then continue with --resume")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or not os.access(folder, os.W_OK):
        return (f"could not write {path}: {folder} is not writable; {kept}. Pass an --out in a directory you "
                "can write to")
    text = str(error).strip()
    reason = getattr(error, "strerror", None) or (text.splitlines()[0] if text else type(error).__name__)
    return f"could not write {path} ({reason}); {kept}. Check the disk and the directory's permissions"


def write_text(path: Path, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return atomic_write(path, write)


def unreadable(path: Path, what: str) -> VaekitError:
    """The error for a run file this user may not read."""
    return VaekitError(f"cannot read {what} {path}: permission denied; make the run directory readable "
                       "(chmod -R u+rX) or run vaekit as its owner")


def read_json(path: Path, what: str, fix: str = "it may be corrupted"):
    """The JSON in ``path``; anything wrong with it is a VaekitError naming ``what`` and ``fix``."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise VaekitError(f"{path} is missing") from None
    except PermissionError:
        raise unreadable(path, what) from None
    except RecursionError:
        raise VaekitError(f"{what} {path} is not valid JSON (nested too deeply); {fix}") from None
    except (ValueError, OSError) as e:  # ValueError: bad JSON, bad UTF-8, an integer of over 4300 digits
        raise VaekitError(f"{what} {path} is not valid JSON ({e}); {fix}") from None


# -- weights and state ----------------------------------------------------------------------
def save_weights(path: Path, model: torch.nn.Module, metadata: Optional[Dict[str, str]] = None) -> Path:
    """Weights as safetensors; tensors shared between modules (tied weights) are stored once."""
    return atomic_write(path, lambda tmp: save_model(model, tmp, metadata=metadata or {}))


def load_weights(path: Path, model: torch.nn.Module) -> None:
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path} is missing; the run has no saved weights yet (train it with `vaekit train`)")
    device = next(model.parameters()).device
    try:
        open(path, "rb").close()  # safetensors says "No such file" for a file it may not read
        load_model(model, str(path), strict=True, device=str(device))
    except PermissionError:
        raise unreadable(path, "checkpoint") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise VaekitError(f"checkpoint {path} is corrupted or unreadable ({e}); "
                          "retrain, or resume from a copy of the run") from None
    except RuntimeError as e:
        first = " ".join(str(e).strip().splitlines()[:2])
        raise VaekitError(f"checkpoint {path} does not match the model in config.json ({first}); "
                          "the run directory may mix files from different runs") from None


def require_checkpoint(checkpoint: str) -> None:
    """Refuse a checkpoint name other than last, best and raw."""
    if checkpoint not in CHECKPOINTS:
        raise VaekitError(f"checkpoint must be 'last' or 'best' (or 'raw': the weights as trained, before "
                          f"--ema's averaging), got {checkpoint!r}")


def checkpoint_file(run, checkpoint: str) -> Path:
    """The weights file of ``checkpoint``: model.safetensors stands in for a missing best (no validation
    split) and for a missing raw (a run trained without --ema, whose last weights are the raw ones)."""
    path = Path(run) / CHECKPOINTS[checkpoint]
    return path if checkpoint == "last" or path.is_file() else Path(run) / WEIGHTS


def weights_fingerprint(run, checkpoint: str = "last") -> str:
    """SHA-256 (first 16 hex digits) of the checkpoint's weights file: which model numbers and samplers are of."""
    weights = checkpoint_file(run, checkpoint)
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def save_state(path: Path, state: dict) -> Path:
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path} is missing, so the run cannot be resumed; start a new run with another --out")
    try:
        return load_weights_only(path)
    except PermissionError:
        raise unreadable(path, "training state") from None
    except pickle.UnpicklingError as e:
        if "weights_only" not in str(e) and "Unsupported global" not in str(e):
            raise VaekitError(f"training state {path} is corrupted or unreadable (UnpicklingError); "
                              "start a new run, or resume from a copy of the run") from None
        raise VaekitError(f"training state {path} holds Python objects other than tensors and numbers, which "
                          "vaekit refuses to load because unpickling them could run code; vaekit did not write "
                          "it. Start a new run, or resume from a copy of the run you trust") from None
    except Exception as e:  # torch raises many types for a damaged pickle/zip
        raise VaekitError(f"training state {path} is corrupted or unreadable ({type(e).__name__}); "
                          "start a new run, or resume from a copy of the run") from None


# -- metrics.jsonl --------------------------------------------------------------------------
def append_metrics(run: Path, row: dict) -> None:
    path = Path(run) / METRICS
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
    except OSError as e:
        raise VaekitError(write_failure(path, e)) from None


def append_event(run: Path, event: str, **fields) -> None:
    """A training event (a rollback, an interruption...) as a row of metrics.jsonl: ``{"event": ...}``."""
    append_metrics(run, {"event": event, **fields})


def read_json_object(path, what: str, fix: str) -> dict:
    """The JSON object in ``path``, {} when there is no such file; anything else is an error saying ``fix``."""
    path = Path(path)
    if not path.exists():
        return {}
    saved = read_json(path, what, fix=fix)
    if not isinstance(saved, dict):
        raise VaekitError(f"{path} is not a vaekit {what}; {fix}")
    return saved


def read_trackers(run) -> dict:
    """The tracker runs this run logged to, by tracker (:mod:`vaekit.track`); {} before the first."""
    return read_json_object(Path(run) / TRACKERS, "tracker file", fix="delete it to start new tracker runs")


def write_trackers(run, saved: dict) -> None:
    write_text(Path(run) / TRACKERS, json.dumps(saved, indent=2, sort_keys=True) + "\n")


def trim_metrics(run: Path, epoch: int) -> None:
    """Drop rows past ``epoch`` (written just before a crash) and broken lines."""
    path = Path(run) / METRICS
    if not path.exists():
        return
    rows = []
    for raw in path.read_bytes().splitlines():
        try:
            line = raw.decode("utf-8")
            row = json.loads(line)
        except (UnicodeDecodeError, ValueError, RecursionError):  # a line cut short or damaged: dropped
            continue
        if isinstance(row, dict) and row.get("epoch", 0) <= epoch:
            rows.append(line)
    write_text(path, "".join(r + "\n" for r in rows))


def read_metrics(path, events: bool = False) -> List[dict]:
    """The rows of a metrics.jsonl, one JSON object per line; the event rows (``{"event": ...}``,
    see :func:`append_event`) only with ``events``.

    A last line that does not parse (a write cut short by a crash) is skipped; a broken
    line before it is an error. An empty file gives [].
    """
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path} does not exist; a run writes metrics.jsonl as it trains (`vaekit train`)")
    try:
        text = path.read_text(encoding="utf-8")
    except PermissionError:
        raise unreadable(path, "metrics file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VaekitError(f"could not read {path} ({e}); it may be corrupted: delete the broken lines") from None
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    rows = []
    for j, (number, line) in enumerate(lines):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # bad JSON, too deeply nested, an integer of over 4300 digits
            if j == len(lines) - 1:
                break  # truncated by a crash mid-write
            raise VaekitError(f"{path}, line {number} is not valid JSON; fix or delete that line") from None
        if not isinstance(row, dict):
            raise VaekitError(f"{path}, line {number} is not a JSON object of metrics")
        if events or "event" not in row:
            rows.append(row)
    return rows


# -- the directory --------------------------------------------------------------------------
def is_run(path) -> bool:
    return (Path(path) / CONFIG).is_file()


def saved_epoch(run, checkpoint: str = "last") -> Optional[int]:
    """The epoch a checkpoint's weights were saved at (their metadata), or None without them."""
    path = checkpoint_file(run, checkpoint)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            return int((f.metadata() or {}).get("epoch", 0))
    except (SafetensorError, OSError, ValueError):
        return 0


def has_checkpoint(path) -> bool:
    """True once an epoch has been saved; a run dir with only config.json holds nothing to lose."""
    return (Path(path) / WEIGHTS).is_file() or (Path(path) / STATE).is_file()


def require_run(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VaekitError(f"run directory {path} does not exist; train one with `vaekit train --out {path}`")
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise unreadable(path, "run directory")
    if not path.is_dir() or not is_run(path):
        raise VaekitError(f"{path} is not a vaekit run (no {CONFIG}); pass the --out directory of `vaekit train`")
    return path


def read_config(path) -> RunConfig:
    path = require_run(path)
    raw = read_json(path / CONFIG, "run config")
    missing = [key for key in ("model", "train", "data", "data_info") if not isinstance(raw, dict) or key not in raw]
    if missing:
        raise VaekitError(f"{path / CONFIG} is not a vaekit run config (it lacks {', '.join(missing)}); "
                          "pass a run directory made by `vaekit train`")
    return RunConfig.from_dict(raw, where=str(path / CONFIG))


def write_config(path, cfg: RunConfig) -> Path:
    return write_text(Path(path) / CONFIG, cfg.to_json())


def new_run_dir(base: str) -> Path:
    """``base``, or ``base-2``, ``base-3``... whichever does not exist yet."""
    path, i = Path(base), 2
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path
