"""Timing in one place.

Clocks are read only at segment boundaries (start, eval points, end), after
synchronising the device, so GPU work queued in a segment is inside it and
no per-step host sync is needed. Train, warm-up and eval time are kept apart.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from suite.measuring import energy as energy_meter
from suite.running.device import synchronize


@dataclass
class SegmentClock:
    """Accumulates time per named segment ('data', 'warmup', 'train', 'eval', 'report') of one clock.

    The first `start` sets the origin: `elapsed()` is the wall time since then, the clock never
    paused (MLPerf's time-to-train when the first segment is the first touch of the data).
    `energy` is the run's `suite.measuring.energy.EnergyMeter` (the one active when the clock is made): it is
    read at the same boundaries, so each segment also gets its joules.
    """

    device: torch.device
    totals: dict[str, float] = field(default_factory=dict)
    _open: tuple[str, float] | None = None
    origin: float | None = None
    energy: energy_meter.EnergyMeter | None = field(default_factory=energy_meter.active)

    def start(self, name: str) -> None:
        if self._open is not None:
            self.stop()
        synchronize(self.device)
        now = time.perf_counter()
        if self.origin is None:
            self.origin = now
        self._open = (name, now)
        if self.energy is not None:
            self.energy.switch(name)

    def elapsed(self) -> float:
        """Wall seconds since the first segment started (0 before it)."""
        return 0.0 if self.origin is None else time.perf_counter() - self.origin

    def stop(self) -> float:
        """Close the open segment; return its length in seconds."""
        if self._open is None:
            return 0.0
        synchronize(self.device)
        name, began = self._open
        spent = time.perf_counter() - began
        self.totals[name] = self.totals.get(name, 0.0) + spent
        self._open = None
        if self.energy is not None:
            self.energy.switch(None)
        return spent

    def total(self, name: str) -> float:
        """Time in `name` so far, the open segment included (without a sync)."""
        running = 0.0
        if self._open is not None and self._open[0] == name:
            running = time.perf_counter() - self._open[1]
        return self.totals.get(name, 0.0) + running


class PhaseTimer:
    """Seconds per named phase of a training iteration (acting, storage, GAE, update): a profile
    breakdown for bench scripts. `totals` None (the default in a run) makes `lap` return at once, so
    the timers cost one call per phase; a dict gets each lap added, after a device sync."""

    def __init__(self, device: torch.device, totals: dict[str, float] | None = None):
        self.device, self.totals = device, totals
        self.last = time.perf_counter()

    def restart(self) -> None:
        """Start the next lap now (time since the last lap, an evaluation say, is nobody's)."""
        if self.totals is not None:
            synchronize(self.device)
            self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        """Add the time since the last lap (or restart) to `name`."""
        if self.totals is None:
            return
        synchronize(self.device)
        now = time.perf_counter()
        self.totals[name] = self.totals.get(name, 0.0) + now - self.last
        self.last = now


class Heartbeat:
    """A progress line during a long train segment: at least every `every_s` seconds, the step
    rate and an ETA. It reads the host clock only, never the device (no sync on GPU: there the
    rate counts steps queued, which track steps run within a few steps)."""

    def __init__(self, log: Callable[[str], None], total: int, unit: str, cap_s: float, every_s: float = 30.0):
        self.log, self.total, self.unit, self.cap_s, self.every_s = log, total, unit, cap_s, every_s
        self.last = time.perf_counter()

    def quiet(self) -> None:
        """Another line was just printed (an eval point): the next beat is `every_s` from now."""
        self.last = time.perf_counter()

    def beat(self, done: int, train_time_s: float) -> None:
        """Print a line if `every_s` has passed since the last one; `done` units in `train_time_s`."""
        now = time.perf_counter()
        if now - self.last < self.every_s:
            return
        self.last = now
        rate = done / max(train_time_s, 1e-9)
        eta = min((self.total - done) / max(rate, 1e-9), max(0.0, self.cap_s - train_time_s))
        self.log(f"  ... {done}/{self.total} {self.unit}, {rate:,.1f} {self.unit}/s, "
                 f"train {train_time_s:.0f}s, ETA {eta:.0f}s")
