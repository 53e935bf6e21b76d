"""Timing in one place.

Clocks are read only at segment boundaries (start, eval points, end), after
synchronising the device, so GPU work queued in a segment is inside it and
no per-step host sync is needed. Train, warm-up and eval time are kept apart.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from suite.device import synchronize


@dataclass
class SegmentClock:
    """Accumulates time per named segment ('train', 'eval', 'warmup')."""

    device: torch.device
    totals: dict[str, float] = field(default_factory=dict)
    _open: tuple[str, float] | None = None

    def start(self, name: str) -> None:
        if self._open is not None:
            self.stop()
        synchronize(self.device)
        self._open = (name, time.perf_counter())

    def stop(self) -> float:
        """Close the open segment; return its length in seconds."""
        if self._open is None:
            return 0.0
        synchronize(self.device)
        name, began = self._open
        spent = time.perf_counter() - began
        self.totals[name] = self.totals.get(name, 0.0) + spent
        self._open = None
        return spent

    def total(self, name: str) -> float:
        """Time in `name` so far, the open segment included (without a sync)."""
        running = 0.0
        if self._open is not None and self._open[0] == name:
            running = time.perf_counter() - self._open[1]
        return self.totals.get(name, 0.0) + running
