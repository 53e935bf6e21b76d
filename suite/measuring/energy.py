"""Energy a run used, from the counters the machine keeps: NVML on NVIDIA GPUs, RAPL on Linux CPUs.

An `EnergyMeter` is opened around a run's training (the runner does it) and
read at the same segment boundaries as the run's clock (`SegmentClock`
calls `switch`), so each segment (data, warm-up, train, eval) gets the
joules spent while it was open, and `energy_to_target_j` sits beside
`time_to_target_s` (train segments up to the evaluation that met the
target). Both counters are cumulative and cheap to read (a sysfs file, one
NVML call), so a reading costs nothing next to a segment.

What is counted:
- a CUDA run: the run's GPU through NVML's total-energy counter
  (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the driver
  loaded; Volta and newer), plus the CPU packages when RAPL is readable;
- a CPU run: the CPU packages through RAPL
  (`/sys/class/powercap/intel-rapl:N/energy_uj`, microjoules, wrapping at
  `max_energy_range_uj`; AMD's packages appear there too on recent kernels).
RAPL counts whole packages, other processes included: the record's `host`
says how busy the machine was. The sub-zones (core, uncore, dram) are parts
of a package or outside it and the `psys` zone holds the packages, so only
the top-level package zones are summed.

A counter that is missing or unreadable (no powercap folder, counters
readable by root only, no NVML, a GPU without the counter) gives
`total_j: null` with the reason in `note`; it never fails a run.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

POWERCAP = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")  # top level only: intel-rapl:0:1 is a part of package 0

_active: "EnergyMeter | None" = None


def active() -> "EnergyMeter | None":
    """The meter of the run under way in this process (a `SegmentClock` made now reports to it), or None."""
    return _active


class Counter:
    """One cumulative counter read as joules since it was opened; wrap-around of a ranged counter undone."""

    def __init__(self, name: str, read: Callable[[], float], wrap: float | None = None):
        self.name, self._read, self.wrap = name, read, wrap
        self.first = self.last = read()
        self.joules = 0.0

    def advance(self) -> float:
        """Read the counter; return the joules since the last reading (and add them to `joules`)."""
        now = self._read()
        delta = now - self.last
        if delta < 0 and self.wrap:  # the counter passed its range and started again from 0
            delta += self.wrap
        self.last = now
        delta = max(delta, 0.0)
        self.joules += delta
        return delta


def rapl_counters(root: Path | None = None) -> tuple[list[Counter], str | None]:
    """The readable RAPL package counters under `root` (default POWERCAP), or ([], why none)."""
    root = POWERCAP if root is None else root
    if not root.is_dir():
        return [], f"no RAPL counters ({root} does not exist on this machine)"
    zones = sorted(p for p in root.iterdir() if _PACKAGE_ZONE.match(p.name))
    if not zones:
        return [], f"no RAPL package zones in {root}"
    counters, problems = [], []
    for zone in zones:
        name = _read_text(zone / "name") or zone.name
        if name == "psys":  # the whole platform, packages included: summing it would count them twice
            continue
        try:
            wrap_uj = float((zone / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            wrap_uj = None
        path = zone / "energy_uj"
        try:
            counters.append(Counter(f"rapl:{name}", lambda path=path: float(path.read_text()) / 1e6,
                                    wrap_uj / 1e6 if wrap_uj else None))
        except PermissionError:
            problems.append(f"{path} is readable by root only (grant read access, e.g. chmod o+r, to measure)")
        except (OSError, ValueError) as exc:
            problems.append(f"{path} unreadable ({exc})")
    if counters:
        return counters, None
    return [], problems[0] if problems else f"no RAPL package zones in {root}"


def nvml_counter(device: Any) -> tuple[Counter | None, str | None]:
    """The NVML total-energy counter of CUDA `device` (a torch.device), or (None, why not)."""
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py is not installed (pip install nvidia-ml-py) to read the GPU's energy"
    try:
        pynvml.nvmlInit()
        handle = _nvml_handle(pynvml, device)
        read = lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3  # noqa: E731 - mJ -> J
        return Counter(f"nvml:{_gpu_name(pynvml, handle)}", read), None
    except Exception as exc:  # noqa: BLE001 - NVMLError_NotSupported (pre-Volta), no driver, ...: no figure
        return None, f"the GPU's energy counter is not readable through NVML ({type(exc).__name__}: {exc})"


def _nvml_handle(pynvml, device: Any):
    """The NVML handle of `device`: by UUID, which CUDA_VISIBLE_DEVICES does not renumber; else by index."""
    index = device.index if getattr(device, "index", None) is not None else 0
    try:
        import torch

        uuid = str(torch.cuda.get_device_properties(index).uuid)
        return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:  # noqa: BLE001 - an older torch without `uuid`, or NVML that does not know it
        return pynvml.nvmlDeviceGetHandleByIndex(index)


def _gpu_name(pynvml, handle) -> str:
    name = pynvml.nvmlDeviceGetName(handle)
    return name.decode() if isinstance(name, bytes) else str(name)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


class EnergyMeter:
    """Joules per segment of one run, summed over the counters found for its device.

    `with EnergyMeter(device):` opens the counters and makes the meter `active()`, so the run's
    `SegmentClock` reports its segment changes through `switch`; `summary()` is the record's `energy`.
    """

    def __init__(self, device: Any = None, powercap: Path | None = None):
        self.counters: list[Counter] = []
        self.notes: list[str] = []
        if device is not None and getattr(device, "type", str(device)) == "cuda":
            gpu, why = nvml_counter(device)
            self.counters += [gpu] if gpu else []
            self.notes += [why] if why else []
        cpu, why = rapl_counters(powercap)
        self.counters += cpu
        self.notes += [why] if why else []
        self.segments: dict[str, float] = {}
        self._open: str | None = None

    def __enter__(self) -> "EnergyMeter":
        global _active
        self._previous, _active = _active, self
        return self

    def __exit__(self, *exc: Any) -> None:
        global _active
        self.switch(None)
        _active = self._previous

    def switch(self, segment: str | None) -> None:
        """Charge the joules since the last reading to the open segment, then open `segment` (None: none)."""
        joules = self._advance()
        if self._open is not None and joules is not None:
            self.segments[self._open] = self.segments.get(self._open, 0.0) + joules
        self._open = segment

    def segment(self, name: str) -> float | None:
        """Joules of closed `name` segments so far (None when nothing is counted)."""
        return round(self.segments.get(name, 0.0), 3) if self.counters else None

    def _advance(self) -> float | None:
        if not self.counters:
            return None
        total = 0.0
        for counter in list(self.counters):
            try:
                total += counter.advance()
            except Exception as exc:  # noqa: BLE001 - a counter that stops answering is dropped, the run goes on
                self.counters.remove(counter)
                self.notes.append(f"{counter.name} stopped answering ({type(exc).__name__}: {exc}); "
                                  "figures after that leave it out")
        return total

    def summary(self) -> dict[str, Any]:
        """The record's `energy`: joules per segment and in all (from opening to the last reading), the
        counters summed (`source`), and `note` (why a figure is null or partial; None when all is well)."""
        if not self.counters:
            return unmeasured("; ".join(self.notes) or "no energy counter on this machine")
        return {
            "total_j": round(sum(c.joules for c in self.counters), 3),
            "segments_j": {name: round(joules, 3) for name, joules in self.segments.items()},
            "source": " + ".join(c.name for c in self.counters),
            "counters_j": {c.name: round(c.joules, 3) for c in self.counters},
            "note": "; ".join(self.notes) or None,
        }


def unmeasured(reason: str) -> dict[str, Any]:
    """The `energy` of a run that measured none (no readable counter, or it did not train), with why."""
    return {"total_j": None, "segments_j": None, "source": None, "counters_j": None, "note": reason}
