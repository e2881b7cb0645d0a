"""MLflow through ``mlflow.tracking.MlflowClient``: a local ``file:`` store in RUN/mlruns by default,
``--set log.mlflow.uri=http://...`` for a tracking server (or ``sqlite:///...``, with the full ``mlflow``
package); the MLflow run id is kept for resume. MLflow 3 has put its file store in maintenance mode
and refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is set: vaekit sets it (if unset) for the default."""
from __future__ import annotations

import os
import tempfile
import warnings
from typing import Dict

import numpy as np

from .base import Tracker, library


class MLflow(Tracker):
    name = "mlflow"

    def __init__(self, *args):
        super().__init__(*args)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracking = library("mlflow.tracking", self.name)
        # MLflow 3 keeps its file store only on request; a local folder of plain files is what this default is for
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        saved = self.saved or {}
        self.uri = saved.get("uri") or self.options.get("uri") or (self.run_dir / "mlruns").resolve().as_uri()
        self.client = tracking.MlflowClient(tracking_uri=self.uri)
        self.run_id = saved.get("run_id")
        if self.run_id is None:
            name = self.options.get("experiment") or "vaekit"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = self.client.get_experiment_by_name(name)
                experiment = found.experiment_id if found else self.client.create_experiment(name)
                self.run_id = self.client.create_run(experiment, run_name=self.run_dir.name).info.run_id
        else:
            self.client.update_run(self.run_id, status="RUNNING")

    def ids(self) -> dict:
        return {"uri": self.uri, "run_id": self.run_id}

    def params(self, params: Dict[str, object]) -> None:
        if self.saved:  # MLflow params are write-once: a resumed run logged them when it started
            return
        from mlflow.entities import Param

        items = [Param(k[:250], str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def scalars(self, values: Dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k.replace(":", "_"), float(v), now, step)
                                                    for k, v in values.items()])

    def images(self, images: Dict[str, np.ndarray], step: int) -> None:
        from PIL import Image

        with tempfile.TemporaryDirectory() as tmp:
            for key, image in images.items():
                path = os.path.join(tmp, f"{key.replace('/', '_')}_step{step:08d}.png")
                Image.fromarray(image).save(path)
                self.client.log_artifact(self.run_id, path, artifact_path="images")

    def close(self) -> None:
        self.client.set_terminated(self.run_id)
