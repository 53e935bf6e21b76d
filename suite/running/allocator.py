"""Host memory: glibc's malloc set to keep freed memory for reuse, as training loops need.

A CPU training step allocates and frees the same activation and gradient buffers every step.
glibc's defaults hand large freed blocks back to the kernel (blocks above a 128 KiB-32 MiB
mmap threshold are unmapped; free space at the top of the heap beyond a trim threshold is
released), so the next step faults the same memory in again, page by page, zeroed. PPO's
update on MinAtar (512-sample minibatches) took ~3,500-5,700 page faults per rollout that
way and ~30 with freed memory kept; atari_rl's quick run stepped 1.14x (1.04..1.17) faster
(`python bench/malloc_tuning.py --tasks atari_rl --reps 4`, idle; the other tasks' runs
0.97-1.07x). PyTorch's CPU tuning guide gets the same from jemalloc or tcmalloc via
LD_PRELOAD, which must be set before the process starts; `mallopt` sets glibc's thresholds
from inside it, so `python run_all.py` needs nothing from the user. The cost: up to
`TRIM_THRESHOLD` of freed memory stays with the process instead of going back to the kernel.

Kept memory would outlive the run that freed it, and the next run in the same process would
count it in its peak memory: `release_freed_memory` (glibc's `malloc_trim`) hands it back
between runs, so each run's peak is its own.

`DLBENCH_MALLOC=default` leaves glibc as it is (for A/B runs; bench/malloc_tuning.py).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

ENV = "DLBENCH_MALLOC"
MMAP_THRESHOLD = 64 << 20  # blocks below this come from the heap and are reused, not unmapped
TRIM_THRESHOLD = 256 << 20  # free space kept at the top of the heap before any goes back
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h parameter numbers

_state: str | None = None  # what the allocator does, once set for this process
_kept = False  # whether this process keeps freed memory (then release_freed_memory has work to do)


def keep_freed_memory() -> str:
    """Set glibc's thresholds once per process (unless DLBENCH_MALLOC=default); return what the
    allocator does now, in words, for the record's `host.malloc`."""
    global _state, _kept
    if _state is not None:
        return _state
    if os.environ.get(ENV, "").strip().lower() == "default":
        _state = f"glibc defaults ({ENV}=default)" if _glibc() else "the platform's allocator"
        return _state
    libc = _glibc()
    if libc is None:
        _state = "the platform's allocator (not glibc: left as it is)"
    elif libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1:
        _state = f"glibc, freed memory kept (mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim threshold " \
                 f"{TRIM_THRESHOLD >> 20} MiB; suite.running.allocator)"
        _kept = True
    else:
        _state = "glibc defaults (mallopt refused the thresholds)"
    return _state


def release_freed_memory() -> bool:
    """Hand the memory freed so far back to the kernel (glibc's `malloc_trim(0)`), where dlbench keeps
    it; True if any went back. The runner calls it before each run."""
    keep_freed_memory()
    return _kept and bool(_glibc().malloc_trim(0))


@functools.cache  # find_library asks ldconfig: once per process
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has `mallopt` and `gnu_get_libc_version`), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError on musl, macOS, Windows
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
        return libc
    except (OSError, AttributeError, TypeError):
        return None
