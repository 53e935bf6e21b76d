"""Peak memory of one run: the CUDA allocator's peak on GPU, peak RSS on CPU.

Several runs share a process in `run_all.py`, so the CPU peak cannot come
from `ru_maxrss` (a process-lifetime high-water mark). On Linux the kernel's
own high-water mark (VmHWM) is reset at the start of the run by writing 5 to
/proc/self/clear_refs and read at its end: exact, and free. Elsewhere a
thread samples the resident set size; it wakes rarely, because on a 2-core
machine a 20 ms sampler slowed the plain loop of bench/harness_overhead.py
to 0.95 of its throughput (medians of 4 alternating runs each, noisy).
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

import psutil
import torch

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def reset_kernel_peak() -> bool:
    """Reset this process's VmHWM to its current RSS; False where the kernel offers no such reset."""
    try:
        CLEAR_REFS.write_text("5")
        return kernel_peak_bytes() is not None
    except OSError:
        return False


def kernel_peak_bytes() -> int | None:
    """VmHWM (peak RSS since the last reset) in bytes, or None where /proc does not have it."""
    try:
        match = re.search(r"^VmHWM:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


class PeakMemory:
    def __init__(self, device: torch.device, interval_s: float = 0.25):
        self.device = device
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._kernel = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._process = psutil.Process()
        self.peak_bytes = self._process.memory_info().rss
        self._kernel = reset_kernel_peak()
        if not self._kernel:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)
        if self._kernel:
            self.peak_bytes = max(self.peak_bytes, kernel_peak_bytes() or 0)

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)
