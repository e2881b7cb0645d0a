"""Experiment trackers (--log tensorboard,mlflow,wandb): what each logged is read back with the
tracker's own reader (TensorBoard's EventAccumulator, MLflow's MlflowClient on its file store, the
records of W&B's offline run file), across a resume; a failing tracker never stops training."""
from __future__ import annotations

import glob
import json
import shutil
import struct
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import run_cli

# found, not imported: importing the trackers at collection cost every worker seconds
pytestmark = pytest.mark.skipif(not all(find_spec(m) for m in ("tensorboard", "mlflow", "wandb")),
                                reason="the trackers are the vaekit[log] extra, which make test installs")

TINY = ["--data", "digits", "--recipe", "conv", "--widths", "4,8", "--no-progress", "--no-plots"]


def steps_of(run: Path) -> list:
    return [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "epoch" in r
            and "event" not in r]


def wandb_records(run: Path):
    """(run id, record) of every record in the run's W&B offline files: the LevelDB log format W&B writes
    (7-byte header, 32 KiB blocks of CRC, length and type headers), each record W&B's own protobuf."""
    from wandb.proto import wandb_internal_pb2 as pb

    for path in sorted(glob.glob(str(run / "wandb" / "offline-run-*" / "run-*.wandb"))):
        data, pos, parts = Path(path).read_bytes(), 7, []
        assert data[:4] == b":W&B"
        while pos + 7 <= len(data):
            left = 32768 - pos % 32768
            _, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
            if length == 0 and kind == 0:
                pos += left
                continue
            parts.append(data[pos + 7:pos + 7 + length])
            pos += 7 + length
            if kind in (1, 4):  # a whole record, or the last piece of one
                record = pb.Record()
                record.ParseFromString(b"".join(parts))
                parts = []
                yield Path(path).stem[len("run-"):], record


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A run logged to all three trackers for 2 epochs, resumed for a third, then evaluated."""
    run = tmp_path_factory.mktemp("track") / "run"
    code, _, _ = run_cli(["train", *TINY, "--epochs", "2", "--out", run, "--log", "tensorboard,mlflow,wandb"])
    assert code == 0
    first = json.loads((run / "trackers.json").read_text())
    assert run_cli(["train", "--out", run, "--resume", "--epochs", "3", "--no-progress", "--no-plots"])[0] == 0
    assert run_cli(["evaluate", run, "--metrics", "elbo"])[0] == 0
    return run, first


def test_tensorboard_has_every_row_and_images_across_the_resume(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, first = tracked
    saved = json.loads((run / "trackers.json").read_text())
    assert saved == first  # the resume continued the same tracker runs
    folders = list((run / "tensorboard").iterdir())
    assert [f.name for f in folders] == [first["tensorboard"]["folder"]]
    events = EventAccumulator(str(folders[0]), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert [e.step for e in events.Scalars("val_elbo")] == steps_of(run)
    assert [e.step for e in events.Scalars("event/resumed")] == [steps_of(run)[1]]
    assert [e.step for e in events.Images("reconstructions")] == steps_of(run)
    assert {"samples", "reconstructions"} <= set(events.Tags()["images"])
    elbo = next(iter(json.loads((run / "evaluation.json").read_text()).values()))["elbo"]
    assert events.Scalars("evaluate/elbo")[-1].value == pytest.approx(elbo, rel=1e-6)


def test_mlflow_has_the_params_and_the_metric_history(tracked):
    from mlflow.tracking import MlflowClient

    run, first = tracked
    client = MlflowClient(tracking_uri=first["mlflow"]["uri"])
    logged = client.get_run(first["mlflow"]["run_id"])
    assert logged.data.params["train.epochs"] == "2" and logged.data.params["model.variant"] == "vae"
    assert logged.info.status == "FINISHED"
    history = client.get_metric_history(first["mlflow"]["run_id"], "val_elbo")
    assert sorted(m.step for m in history) == steps_of(run)
    assert "evaluate/elbo" in logged.data.metrics
    images = [a.path for a in client.list_artifacts(first["mlflow"]["run_id"], "images")]
    assert len(images) == 2 * 3  # samples and reconstructions after each of the 3 epochs


def test_wandb_offline_run_holds_the_history(tracked):
    run, first = tracked
    history = {}
    for run_id, record in wandb_records(run):
        assert run_id == first["wandb"]["id"]  # the resume wrote to the same W&B run
        if record.WhichOneof("record_type") == "history":
            items = {"/".join(i.nested_key) or i.key: i.value_json for i in record.history.item}
            if "val_elbo" in items:
                history[record.history.step.num] = float(items["val_elbo"])
    assert sorted(history) == steps_of(run)
    rows = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "val_elbo" in r]
    assert [history[r["step"]] for r in rows] == pytest.approx([r["val_elbo"] for r in rows])


def test_a_failing_tracker_never_stops_or_changes_training(tmp_path, capsys):
    plain, logged = tmp_path / "plain", tmp_path / "logged"
    assert run_cli(["train", *TINY, "--epochs", "2", "--out", plain])[0] == 0
    code, _, err = run_cli(["train", *TINY, "--epochs", "1", "--out", logged, "--log", "mlflow"], capsys)
    assert code == 0 and "tracker failed" not in err
    shutil.rmtree(logged / "mlruns")
    (logged / "mlruns").write_text("in the way")  # its store is gone for good, mid-run
    code, _, err = run_cli(["train", "--out", logged, "--resume", "--epochs", "2", "--no-progress", "--no-plots"],
                           capsys)
    assert code == 0, err
    assert err.count("warning: the mlflow tracker failed") == 1 and "training goes on without it" in err
    assert (plain / "model.safetensors").read_bytes() == (logged / "model.safetensors").read_bytes()
    events = [json.loads(line) for line in (logged / "metrics.jsonl").read_text().splitlines()]
    assert [e["tracker"] for e in events if e.get("event") == "tracker_failed"] == ["mlflow"]


def test_log_option_errors(capsys):
    from vaekit.track import parse_trackers

    assert parse_trackers("none") == [] and parse_trackers("TensorBoard, mlflow,tensorboard") == ["tensorboard",
                                                                                                  "mlflow"]
    code, _, err = run_cli(["train", *TINY, "--epochs", "1", "--log", "neptune"], capsys)
    assert code == 2 and err.startswith("error: --log neptune: unknown tracker; choose from tensorboard, mlflow")


def test_a_missing_tracker_library_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if the extra were not installed
    code, _, err = run_cli(["train", *TINY, "--epochs", "1", "--out", tmp_path / "r", "--log", "wandb"], capsys)
    assert code == 2 and "pip install 'vaekit[log]'" in err
    assert not (tmp_path / "r").exists()
