"""The machine's own limit: a dense matmul microbenchmark per device and precision, and utilisation.

`machine_peak(device, data_dir)` measures, once per machine, the best FLOP/s of
square matrix multiplies in fp32 and bf16 (best of three repeats at each size;
CPU: 1024, 2048, 4096 with `perf_counter`; CUDA: 4096, 8192 with CUDA events).
The figures are cached in DATA/peak/<key>.json, where the key hashes the
hardware fingerprint (device, CPU model, cores, GPU name and memory, host
name), the torch version and thread count, and the method: a cache written on
another machine (or by another method) is never read, the peak is measured
again. A measurement that fails leaves the figures None with the reason.

`utilisation(flops_per_sample, samples_per_s, peak, precision)` is model FLOP/s
(training FLOPs per sample x samples/s) over the peak in the run's precision.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from suite.measuring import fingerprint
from suite.measuring.contention import BUSY_SHARE, HostLoad
from suite.results.safe_io import atomic_write_text

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
SIZES = {"cpu": (1024, 2048, 4096), "cuda": (4096, 8192)}
REPEATS = 3
SIZES_ENV = "DLBENCH_PEAK_SIZES"  # e.g. "512": the tests' quick stand-in (a different method, so its own cache)


def measured_busy(figures: dict[str, Any] | None) -> bool:
    """Whether a CPU peak was measured while others used more than `contention.BUSY_SHARE` of the CPU: the
    figures are kept for that run's utilisation, but a cached busy figure is measured again by the next run
    (keeping the better figure per precision), and `suite.running.device.cpu_bf16_verdict` does not let a
    busy bf16 / fp32 ratio decide."""
    share = (figures or {}).get("other_cpu_share")
    return share is not None and share > BUSY_SHARE


def default_sizes(device: torch.device) -> tuple[int, ...]:
    chosen = os.environ.get(SIZES_ENV)
    if chosen:
        return tuple(int(n) for n in chosen.split(",") if n.strip())
    return SIZES.get(device.type, SIZES["cpu"])


def method(device: torch.device, sizes: tuple[int, ...] | None = None) -> str:
    sizes = sizes or default_sizes(device)
    timer = "CUDA events" if device.type == "cuda" else "perf_counter"
    # fp32 on CUDA: TF32 tensor cores when allowed (the harness allows them, so runs and peak agree)
    tf32 = f", TF32 {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}" if device.type == "cuda" else ""
    return (f"dense square matmul (torch.mm), best of {REPEATS} at n={', '.join(map(str, sizes))}, "
            f"2n^3 FLOPs, {timer}{tf32}, {torch.get_num_threads()} CPU threads")


def fingerprint_key(device: torch.device, how: str) -> str:
    """Hash of what makes a peak figure this machine's: hardware, torch, threads and method."""
    hw = fingerprint.hardware(device)
    parts = [hw["device"], hw["device_name"], hw["cpu"], hw["cores"], hw["gpus"], hw["gpu_mem_gb"],
             hw["hostname"] or platform.node(), torch.__version__, how]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def matmul_flops(device: torch.device, dtype: torch.dtype, n: int) -> float:
    """Best FLOP/s of `REPEATS` n x n x n multiplies (after one untimed warm-up)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(REPEATS):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.mm(a, b)
            end.record()
            end.synchronize()
            seconds = start.elapsed_time(end) / 1000.0
        else:
            began = time.perf_counter()
            torch.mm(a, b)
            seconds = time.perf_counter() - began
        best = min(best, seconds)
    return 2.0 * n**3 / best


def measure(device: torch.device, sizes: tuple[int, ...] | None = None) -> dict[str, Any]:
    """{"fp32": FLOP/s, "bf16": FLOP/s, "method": ..., "error": ...}: a failing precision is None with its reason."""
    sizes = sizes or default_sizes(device)
    out: dict[str, Any] = {"method": method(device, sizes), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    errors = []
    with HostLoad() as load:  # a peak measured on a busy machine is low: say how busy it was
        for name, dtype in PRECISIONS.items():
            try:
                out[name] = round(max(matmul_flops(device, dtype, n) for n in sizes), 1)
            except Exception as exc:  # noqa: BLE001 - a missing kernel or OOM leaves this precision without a peak
                out[name] = None
                errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")
    out["error"] = "; ".join(errors) or None
    out["other_cpu_share"] = (load.summary() or {}).get("other_cpu_share")
    return out


def cache_path(data_dir: Path, device: torch.device, sizes: tuple[int, ...] | None = None) -> Path:
    return Path(data_dir) / "peak" / f"{fingerprint_key(device, method(device, sizes))}.json"


@functools.lru_cache(maxsize=None)
def _cached(data_dir: str, device_text: str, sizes: tuple[int, ...] | None) -> dict[str, Any]:
    device = torch.device(device_text)
    path = cache_path(Path(data_dir), device, sizes)
    cached = None
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") != path.stem or not cached.get("fp32"):
            cached = None
    except (OSError, ValueError):
        pass  # absent or unreadable: measure
    if cached is not None and not measured_busy(cached):
        return {**cached, "cache": str(path)}
    result = {**measure(device, sizes), "key": path.stem}
    if cached is not None and measured_busy(result):  # busy twice: the better figure per precision stands
        result = {**result, **{name: max(result.get(name) or 0, cached.get(name) or 0) or None for name in PRECISIONS}}
    if result.get("fp32"):
        _store(path, result)
    return {**result, "cache": str(path)}


def _store(path: Path, figures: dict[str, Any]) -> None:
    """Write the cache file atomically; a read-only data folder only means measuring again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({k: v for k, v in figures.items() if k != "cache"}, indent=1))
    except OSError:
        pass


def remeasure(device: torch.device, data_dir: Path | str, previous: dict[str, Any],
              sizes: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Measure again (the cached figure looked low); keep the better figure per precision, in the cache too."""
    try:
        fresh = measure(device, sizes)
    except Exception:  # noqa: BLE001
        return previous
    best = dict(previous)
    for name in PRECISIONS:
        if fresh.get(name) and (not best.get(name) or fresh[name] > best[name]):
            best[name] = fresh[name]
    path = cache_path(Path(data_dir), device, sizes)
    best["key"] = path.stem
    _store(path, best)
    _cached.cache_clear()
    return best


def machine_peak(device: torch.device, data_dir: Path | str, sizes: tuple[int, ...] | None = None) -> dict[str, Any]:
    """This machine's peak FLOP/s per precision (measured once, then read from the cache)."""
    if device.type not in ("cpu", "cuda"):
        return {"fp32": None, "bf16": None, "method": None, "error": f"no peak microbenchmark for {device.type}"}
    try:
        return dict(_cached(str(data_dir), str(device), sizes))
    except Exception as exc:  # noqa: BLE001 - never a made-up number: utilisation stays null with the reason
        return {"fp32": None, "bf16": None, "method": method(device, sizes), "error": f"{type(exc).__name__}: {exc}"}


def cpu_bf16_fast(data_dir: Path | str) -> tuple[bool, str]:
    """(is this CPU fast in bf16?, the evidence): `suite.running.device.cpu_bf16_verdict` on its flags and
    its measured peaks; a CPU whose flags show no native bf16 is not measured for it."""
    from suite.running.device import cpu_bf16_verdict

    flags = fingerprint.cpu_flags()
    if fingerprint.native_bf16(flags) == []:  # the flags alone decide: no peak to measure
        return cpu_bf16_verdict(flags, None)
    return cpu_bf16_verdict(flags, machine_peak(torch.device("cpu"), data_dir))


def utilisation(flops_per_sample: float | None, samples_per_s: float | None, peak: dict[str, Any] | None,
                precision: str, world_size: int = 1) -> tuple[float | None, str | None]:
    """(model FLOP/s / peak FLOP/s in `precision`, None) or (None, why there is no figure)."""
    if not flops_per_sample:
        return None, "no FLOP count for this model (torch's FlopCounterMode could not count it)"
    if not samples_per_s:
        return None, "no throughput"
    figure = (peak or {}).get(precision)
    if not figure:
        reason = (peak or {}).get("error") or "not measured"
        return None, f"no {precision} peak for this machine ({reason})"
    value = flops_per_sample * samples_per_s / (figure * max(1, world_size))
    return float(f"{value:.4g}"), None  # significant digits: a smoke model on a big GPU is ~1e-7
