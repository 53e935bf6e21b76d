"""Peak memory on CPU: the kernel's high-water mark where Linux has it, a sampler elsewhere."""
from __future__ import annotations

import sys
import time

import pytest
import torch

from suite.measuring import memory
from suite.measuring.memory import PeakMemory

MB = 2**20
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or not memory.reset_kernel_peak(),
                                reason="needs Linux's /proc/self/clear_refs peak-RSS reset")


def _transient(mb: int, hold_s: float = 0.0) -> None:
    """Allocate and touch `mb` MiB, then free it."""
    block = torch.ones(mb * MB // 4)
    time.sleep(hold_s)
    del block


@linux_only
def test_kernel_peak_sees_a_transient_allocation_and_forgets_earlier_ones():
    _transient(400)  # before the run: must not count
    with PeakMemory(torch.device("cpu")) as peak:
        base = memory.kernel_peak_bytes()
        _transient(200)
    assert peak._kernel and peak._thread is None, "no sampler thread where the kernel keeps the peak"
    assert peak.peak_bytes >= base + 180 * MB
    assert peak.peak_bytes < base + 380 * MB, "the 400 MiB block freed before the run does not count"


def test_sampler_is_the_fallback_where_the_kernel_has_no_reset(monkeypatch):
    monkeypatch.setattr(memory, "reset_kernel_peak", lambda: False)
    with PeakMemory(torch.device("cpu"), interval_s=0.01) as peak:
        start = peak.peak_bytes
        _transient(200, hold_s=0.3)
    assert peak._thread is not None and not peak._thread.is_alive()
    assert peak.peak_bytes >= start + 150 * MB
