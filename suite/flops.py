"""Counting FLOPs with torch's FlopCounterMode (matmuls and convolutions, forward and backward)."""
from __future__ import annotations

from typing import Callable


def flops_of(fn: Callable[[], object]) -> float | None:
    """FLOPs torch counts while `fn()` runs (call backward inside `fn` to count it); None where it cannot."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        counter = FlopCounterMode(display=False)
        with counter:
            fn()
        return float(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - a model torch cannot count is not an error
        return None
