"""What every objective returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import torch


@dataclass
class LossOutput:
    loss: torch.Tensor                                   # scalar to minimize (mean over the batch)
    terms: Dict[str, torch.Tensor] = field(default_factory=dict)  # per-example means, nats
