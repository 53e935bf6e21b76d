"""How busy the machine was with other work while a run trained.

A time measured while other processes compete for the CPU is inflated, and
on a small machine badly so (torch's threads wait on busy cores). A record
gathered elsewhere cannot say "measured on an idle machine" by itself, so
each run records the share of the machine's CPU time that went to anything
but this process during the run: system-wide busy CPU time (hypervisor
steal included) minus this process's own, over wall time x CPUs. 0 is a
quiet machine; 0.5 on 2 CPUs means another process kept one core busy.
Under `torchrun` the other ranks count as other processes, so a
data-parallel run is not flagged.
"""
from __future__ import annotations

import os
import time
from typing import Any

import psutil

BUSY_SHARE = 0.25  # above this, `check` and the summary line say the times may be inflated
_IDLE_FIELDS = ("idle", "iowait", "guest", "guest_nice")  # guest time is already counted in user


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask on Linux, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def busy_seconds(times: Any) -> float:
    """Busy CPU seconds in a `psutil.cpu_times()` snapshot (all CPUs summed)."""
    return sum(getattr(times, name) for name in times._fields if name not in _IDLE_FIELDS)


def own_seconds(times: Any) -> float:
    """CPU seconds of this process and its waited-for children in a `Process.cpu_times()` snapshot."""
    return times.user + times.system + getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)


def other_share(system_busy_s: float, own_s: float, wall_s: float, cpus: int) -> float:
    """Share of the machine's CPU time used by other processes, clipped to [0, 1]."""
    if wall_s <= 0 or cpus < 1:
        return 0.0
    return round(min(1.0, max(0.0, (system_busy_s - own_s) / (wall_s * cpus))), 3)


class HostLoad:
    """Context manager: `.summary()` is the record's `host` field for the time inside the block."""

    def __init__(self):
        self._process = psutil.Process()
        self._start: tuple | None = None
        self._end: tuple | None = None

    def _snapshot(self) -> tuple[float, float, float]:
        return time.perf_counter(), busy_seconds(psutil.cpu_times()), own_seconds(self._process.cpu_times())

    def __enter__(self) -> "HostLoad":
        self._start, self._end = self._snapshot(), None
        return self

    def __exit__(self, *exc) -> None:
        self._end = self._snapshot()

    def summary(self) -> dict[str, Any] | None:
        """None when the block was never entered (the run failed before training)."""
        if self._start is None:
            return None
        import torch  # here, not at the top: the results side reads `busy_note` without torch

        wall, busy, own = (b - a for a, b in zip(self._start, self._end or self._snapshot()))
        return {"other_cpu_share": other_share(busy, own, wall, psutil.cpu_count() or 1),
                "torch_threads": torch.get_num_threads()}


def busy_note(record: dict[str, Any]) -> str | None:
    """A warning when other processes used much of the CPU during the run, else None."""
    share = (record.get("host") or {}).get("other_cpu_share")
    if (record.get("world_size") or 1) > 1:
        return None
    if isinstance(share, (int, float)) and share > BUSY_SHARE:
        return f"other processes used {share:.0%} of the CPU during this run: its times may be inflated"
    return None
