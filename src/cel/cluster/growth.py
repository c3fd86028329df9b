"""Growing tensors for data with no vocabulary known up front (CEL-Lite, its buffers and member
lists): capacities double, so growth costs amortised O(1) per entity."""
from __future__ import annotations

import torch


def doubled(capacity: int, needed: int) -> int:
    """The first ``capacity * 2**k`` >= ``needed`` (``capacity`` itself when it suffices)."""
    capacity = max(1, capacity)
    while capacity < needed:
        capacity *= 2
    return capacity


def grown(t: torch.Tensor, rows: int, fill=0) -> torch.Tensor:
    """``t`` with its first dimension padded to ``rows`` by ``fill``."""
    pad = torch.full((rows - t.shape[0], *t.shape[1:]), fill, dtype=t.dtype)
    return torch.cat([t, pad])
