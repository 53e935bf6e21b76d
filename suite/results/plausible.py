"""Is each figure of a record possible on its own? Metric values inside their metric's range, shares in
[0, 1], a machine that can exist, known stop reasons and throughput units, energy that adds up. Pure
functions, each one of `suite.results.consistency.CHECKS`."""
from __future__ import annotations

import functools
import re
from typing import Any, Iterator

from suite.results.numbers import finite as _num


# Metric kinds by the last part of a metric's name ("test/accuracy" -> "accuracy"): the range a value can
# take and whether higher is better. Names not listed here are not checked.
UNIT_INTERVAL = ("accuracy", "acc", "top1", "top5", "f1", "precision", "recall", "auc", "auroc", "iou",
                 "miou", "map", "dice")
NON_NEGATIVE_LOWER_BETTER = ("wer", "cer", "per", "loss", "error", "mse", "mae", "rmse", "perplexity")
NON_NEGATIVE = ("return_std", "episodes", "episode_length")
SIGNED_LOSSES = ("elbo_loss", "nll_signed")  # losses that may be negative by construction
MAIN_UNITS = ("samples/s", "env_steps/s")  # the harness's trainers report one of these
_EXTRA_UNIT = re.compile(r"^[a-z][a-z0-9_]*/s$")  # a task's own unit of work per second: tokens/s, audio_s/s

CURVE_KEYS = ("step", "time_s", "samples", "env_steps")  # where a curve point is, not what was measured


def curve_points(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The curve's points that are objects (a malformed point is the schema's to name)."""
    return [p for p in record.get("curve") or [] if isinstance(p, dict)]


def met(target: dict[str, Any], value: Any) -> bool:
    """Whether `value` meets `target` in its direction (no number never does)."""
    got = _num(value)
    if got is None:
        return False
    goal = float(target["value"])
    return got >= goal if target["higher_is_better"] else got <= goal


def usable_target(record: dict[str, Any]) -> dict[str, Any] | None:
    """The record's target when it has a metric, a finite value and a direction, else None."""
    target = record.get("target")
    if isinstance(target, dict) and isinstance(target.get("metric"), str) and _num(target.get("value")) is not None \
            and isinstance(target.get("higher_is_better"), bool):
        return target
    return None


def metric_kind(name: str) -> str | None:
    """"unit" ([0, 1], higher is better), "lower" (>= 0, lower is better), "non-negative", or None (unknown)."""
    return _metric_kind(str(name))


@functools.lru_cache(maxsize=4096)  # a few metric names, asked for every value of every record read
def _metric_kind(name: str) -> str | None:
    kind = name.rsplit("/", 1)[-1].lower()
    if kind in SIGNED_LOSSES:
        return None
    if kind in UNIT_INTERVAL or kind.split("_", 1)[0] in UNIT_INTERVAL:
        return "unit"
    if kind in NON_NEGATIVE_LOWER_BETTER or kind.endswith("_loss"):
        return "lower"
    if kind in NON_NEGATIVE:
        return "non-negative"
    return None


def _values(record: dict[str, Any]) -> Iterator[tuple[int | None, str, float]]:
    """(curve point index or None for final_metrics, metric name, value) of every metric value the record
    holds (`_where` names the place: only a value out of range needs the text)."""
    for name, value in (record.get("final_metrics") or {}).items():
        if _num(value) is not None:
            yield None, name, float(value)
    for i, point in enumerate(curve_points(record)):
        for name, value in point.items():
            if name not in CURVE_KEYS and _num(value) is not None:
                yield i, name, float(value)


def _where(point: int | None, name: str) -> str:
    return f"final_metrics[{name!r}]" if point is None else f"curve point {point} {name!r}"


def metric_ranges(record: dict[str, Any]) -> list[str]:
    """Values inside their metric's range; a target inside it too, in the metric's direction."""
    found = []
    for point, name, value in _values(record):
        kind = metric_kind(name)
        if kind == "unit" and not 0 <= value <= 1:
            found.append(f"{_where(point, name)} is {value:g}: outside [0, 1]")
            break
        if kind in ("lower", "non-negative") and value < 0:
            found.append(f"{_where(point, name)} is {value:g}: negative")
            break
    target = usable_target(record)
    if target is not None:
        kind, value = metric_kind(target["metric"]), float(target["value"])
        if kind == "unit" and (not 0 <= value <= 1 or target["higher_is_better"] is False):
            found.append(f"target {target['metric']} {value:g} with higher_is_better "
                         f"{target['higher_is_better']}: a value in [0, 1] where higher is better")
        if kind == "lower" and (value < 0 or target["higher_is_better"] is True):
            found.append(f"target {target['metric']} {value:g} with higher_is_better "
                         f"{target['higher_is_better']}: a value >= 0 where lower is better")
    return found


def shares(record: dict[str, Any]) -> list[str]:
    """Shares of the machine's CPU are fractions in [0, 1]."""
    found = []
    host = record.get("host") if isinstance(record.get("host"), dict) else {}
    peak = (record.get("hardware") or {}).get("peak_flops")
    for where, value in (("host.other_cpu_share", host.get("other_cpu_share")),
                         ("hardware.peak_flops.other_cpu_share",
                          peak.get("other_cpu_share") if isinstance(peak, dict) else None)):
        if value is not None and not (_num(value) is not None and 0 <= value <= 1):
            found.append(f"{where} is {value!r}: not a share in [0, 1]")
    threads = host.get("torch_threads")
    if threads is not None and not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        found.append(f"host.torch_threads is {threads!r}: not a thread count >= 1")
    cadence = record.get("eval_cadence")
    if cadence is not None:
        every = cadence.get("every") if isinstance(cadence, dict) else None
        if not (isinstance(every, int) and not isinstance(every, bool) and every > 0
                and cadence.get("unit") in ("samples", "env_steps")):
            found.append(f"eval_cadence is {cadence!r}: want {{'every': an int > 0, 'unit': 'samples' or 'env_steps'}}")
    return found


def machine(record: dict[str, Any]) -> list[str]:
    """The machine a run names can exist: processes and cores counted from one, GPUs from zero, memory
    and measured peaks above zero."""
    found = []
    hardware = record.get("hardware") if isinstance(record.get("hardware"), dict) else {}
    counts = (("world_size", record.get("world_size"), 1), ("hardware.cores", hardware.get("cores"), 1),
              ("hardware.gpus", hardware.get("gpus"), 0))
    for where, value, least in counts:
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= least):
            found.append(f"{where} is {value!r}: not a count >= {least}")
    for where in ("ram_gb", "gpu_mem_gb"):
        value, where = hardware.get(where), f"hardware.{where}"
        if value is not None and not (_num(value) is not None and value > 0):
            found.append(f"{where} is {value!r}: not a size > 0")
    peak = hardware.get("peak_flops") if isinstance(hardware.get("peak_flops"), dict) else {}
    for precision in ("fp32", "bf16"):
        value = peak.get(precision)
        if value is not None and not (_num(value) is not None and value > 0):
            found.append(f"hardware.peak_flops.{precision} is {value!r}: not a rate > 0")
    return found


STOP_REASONS = ("target", "budget", "time", "steps")  # why a run that ended well stopped (speed: "steps")


def stops(record: dict[str, Any]) -> list[str]:
    """A run that ended well stopped for a reason the harness gives."""
    reason = record.get("stop_reason")
    if record.get("status") != "ok" or reason is None or reason in STOP_REASONS:
        return []
    return [f"stop_reason {str(reason)[:40]!r} is not one the harness gives an ok run ({', '.join(STOP_REASONS)})"]


def units(record: dict[str, Any]) -> list[str]:
    """Throughput in a unit the harness reports (samples/s, env_steps/s), extras in a task's unit per second."""
    throughput = record.get("throughput")
    if not isinstance(throughput, dict) or record.get("status") != "ok":
        return []
    found = []
    unit = throughput.get("unit")
    if isinstance(unit, str) and unit.strip() and unit not in MAIN_UNITS:
        found.append(f"throughput unit {unit!r} is not one dlbench reports ({', '.join(MAIN_UNITS)})")
    for extra in throughput.get("extra") or {}:
        if not _EXTRA_UNIT.match(str(extra)):
            found.append(f"throughput.extra unit {extra!r} is not a unit of work per second (e.g. tokens/s)")
    return found


def energy(record: dict[str, Any]) -> list[str]:
    """Joules are finite and non-negative, the segments and the energy to target fit inside the total,
    and a null total says why (`energy.note`)."""
    found = []
    figures = record.get("energy")
    to_target = record.get("energy_to_target_j")
    if to_target is not None and not (_num(to_target) is not None and to_target >= 0):
        found.append(f"energy_to_target_j is {to_target!r}: not a finite, non-negative energy")
    if not isinstance(figures, dict):
        return found
    total = figures.get("total_j")
    if total is None:
        if not figures.get("note"):
            found.append("energy.total_j is null without a note saying why")
        return found
    if not (_num(total) is not None and total >= 0):
        return found + [f"energy.total_j is {total!r}: not a finite, non-negative energy"]
    parts = [v for v in (figures.get("segments_j") or {}).values() if _num(v) is not None]
    if sum(parts) > total * 1.001 + 1e-3:
        found.append(f"energy.segments_j add up to {sum(parts):g} J, more than energy.total_j {total:g}")
    if _num(to_target) is not None and to_target > total * 1.001 + 1e-3:
        found.append(f"energy_to_target_j {to_target:g} is more than energy.total_j {total:g}")
    return found
