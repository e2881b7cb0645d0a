"""Build a registered sampler by name with its args checked, keeping the full args (defaults filled in)."""
from __future__ import annotations

from typing import Optional

from ..registry import SAMPLERS, accepted_args
from .base import Sampler


def build_sampler(name: str, dim: int, args: Optional[dict] = None) -> Sampler:
    """``SAMPLERS[name](dim, **args)`` with the args checked; the full args (defaults filled in) are kept."""
    args = dict(args or {})
    defaults = {k: p.default for k, p in accepted_args(SAMPLERS.get(name)).items() if p.default is not p.empty}
    sampler = SAMPLERS.build(name, args, dim, where="the sampler")
    sampler.name, sampler.args = name, dict(defaults, **args)
    return sampler
