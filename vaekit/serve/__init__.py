"""``vaekit serve``: a run's model behind a local JSON API and a live latent explorer (the ``serve`` extra)."""
from __future__ import annotations

from ..errors import VaekitError


def require_extra() -> None:
    """A one-line error naming the extra when the web stack is not installed."""
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise VaekitError(f"vaekit serve needs {' and '.join(missing)}: pip install vaekit[serve]")
