"""What every tracker does; a tracker wraps one library's writer."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ..errors import VaekitError


class Tracker:
    """One tracker run. ``saved`` is what :meth:`ids` returned when the run was last logged to (from
    RUN/trackers.json), so a resumed run continues the same tracker run; None starts a new one.
    ``first_step``: the step training resumes from (rows at or after it are logged again), or None."""

    name = "tracker"
    extra = "log"  # the vaekit extra whose install brings the library

    def __init__(self, run_dir: Path, options: dict, saved: Optional[dict], first_step: Optional[int]):
        self.run_dir, self.options, self.saved, self.first_step = Path(run_dir), options, saved, first_step

    def ids(self) -> dict:
        """What a later resume needs to continue this tracker run (saved in RUN/trackers.json)."""
        raise NotImplementedError

    def params(self, params: Dict[str, object]) -> None:
        """The run's config, flattened to ``model.latent_dim``-style keys."""
        raise NotImplementedError

    def scalars(self, values: Dict[str, float], step: int) -> None:
        raise NotImplementedError

    def summary(self, values: Dict[str, float], step: int) -> None:
        """Numbers about the whole run (an evaluation), at its last step."""
        self.scalars(values, step)

    def images(self, images: Dict[str, np.ndarray], step: int) -> None:
        """uint8 images (H, W, 3), by name."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def library(module: str, tracker: str):
    """Import a tracker's library, or say which extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise VaekitError(f"--log {tracker} needs the {module.split('.')[0]} package: pip install 'vaekit[log]'") \
            from None
