"""The names of per-layer numbers: the KL of stochastic layer i is ``kl_i``, top layer first (``kl_1``).

Objectives and metrics build these keys with :func:`layer_key`; tables and ``compare`` read them
back with :func:`key_layer`.
"""
from __future__ import annotations

from typing import Optional

PREFIX = "kl_"


def layer_key(i: int) -> str:
    """The key of stochastic layer ``i`` (1 = top): ``kl_1``, ``kl_2``, ..."""
    return f"{PREFIX}{i}"


def key_layer(key: str) -> Optional[int]:
    """The layer ``key`` names (``kl_2`` -> 2), or None when it is not a per-layer key."""
    number = key[len(PREFIX):] if key.startswith(PREFIX) else ""
    return int(number) if number.isdigit() else None
