"""Does a record agree with itself? Semantic checks of a schema-valid record. Pure functions.

The schema says each field has the right type; these checks say the fields
can all be true at once: times in their order, `reached_target` against
the target, the curve and the final metrics, a curve that runs forwards,
steps within the run and its budget, metric values inside their metric's
range and targets in their metric's direction, shares in [0, 1], a machine
that can exist, known stop reasons and throughput units, the config hash
and seed against the config, and the file name against the run id.
`problems(record)` returns one line per contradiction; `suite.check` makes
such a record unfit, so it never reaches a table, and `--resume` runs it
again.

Figures are rounded to 4 decimals when recorded, so comparisons of times
allow `TOLERANCE_S`. A field a record lacks or holds as null is not
checked: older records and the fields still being added (`wall_to_target_s`,
`data_s`, `seconds_per_step`, `eval_cadence`, ...) pass while absent.
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import PurePath
from typing import Any, Callable, Iterator

TOLERANCE_S = 2e-3  # two roundings to 4 decimals, and a little float noise
CLOCK_TOLERANCE_S = 2.0  # started_at / finished_at have whole seconds

# Metric kinds by the last part of a metric's name ("test/accuracy" -> "accuracy"): the range a value can
# take and whether higher is better. Names not listed here are not checked.
UNIT_INTERVAL = ("accuracy", "acc", "top1", "top5", "f1", "precision", "recall", "auc", "auroc", "iou",
                 "miou", "map", "dice")
NON_NEGATIVE_LOWER_BETTER = ("wer", "cer", "per", "loss", "error", "mse", "mae", "rmse", "perplexity")
NON_NEGATIVE = ("return_std", "episodes", "episode_length")
SIGNED_LOSSES = ("elbo_loss", "nll_signed")  # losses that may be negative by construction
MAIN_UNITS = ("samples/s", "env_steps/s")  # the harness's trainers report one of these
_EXTRA_UNIT = re.compile(r"^[a-z][a-z0-9_]*/s$")  # a task's own unit of work per second: tokens/s, audio_s/s
_RUN_ID = re.compile(r"^(?P<task>[^.]+)\.(?P<model>[^.]+)\.(?P<profile>[^.]+)\.s(?P<seed>\d+)\.\d{8}T\d{6}\.[0-9a-f]{6}$")
CURVE_KEYS = ("step", "time_s", "samples", "env_steps")  # where a curve point is, not what was measured


def problems(record: dict[str, Any]) -> list[str]:
    """One line per way `record` contradicts itself (empty: consistent)."""
    found: list[str] = []
    for check in CHECKS:
        found += check(record)
    return found


def _num(value: Any) -> float | None:
    """A finite number, or None for null, a bool, text or a non-finite value (other checks name those)."""
    kind = type(value)
    if kind is float:  # the common case first: this runs for every figure of every record read
        return value if value - value == 0 else None  # nan - nan and inf - inf are nan
    if kind is int:
        return float(value)
    if kind is bool or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def timestamps(record: dict[str, Any]) -> list[str]:
    """started_at and finished_at, where both are ISO 8601 times, are in order and hold the wall time."""
    found: list[str] = []
    started, finished = _time(record.get("started_at")), _time(record.get("finished_at"))
    for key, moment in (("started_at", started), ("finished_at", finished)):
        if moment is None and record.get(key) is not None:
            found.append(f"{key} {str(record[key])[:40]!r} is not an ISO 8601 time")
    if started is None or finished is None or (started.tzinfo is None) != (finished.tzinfo is None):
        return found
    elapsed = (finished - started).total_seconds()
    if elapsed < 0:
        found.append(f"finished_at {record['finished_at']} is before started_at {record['started_at']}")
    wall = _num(record.get("wall_time_s"))
    if elapsed >= 0 and wall is not None and wall > elapsed + CLOCK_TOLERANCE_S:
        found.append(f"wall_time_s {wall:g} is longer than started_at to finished_at ({elapsed:g} s)")
    return found


def durations(record: dict[str, Any]) -> list[str]:
    """The time figures nest: train-only <= with evaluation <= wall, each within the run's segments."""
    get = {key: _num(record.get(key)) for key in ("time_to_target_s", "time_to_target_with_eval_s",
                                                  "wall_to_target_s", "train_time_s", "eval_time_s",
                                                  "warmup_s", "data_s", "wall_time_s")}
    found = []

    def order(small: str, large: str, plus: tuple[str, ...] = ()) -> None:
        a, b = get[small], get[large]
        if a is None or b is None or any(get[p] is None for p in plus):
            return
        bound = b + sum(get[p] for p in plus)
        if a > bound + TOLERANCE_S:
            where = f"{large}" + "".join(f" + {p}" for p in plus)
            found.append(f"{small} {a:g} is more than {where} ({bound:g}): the times contradict each other")

    order("time_to_target_s", "train_time_s")
    order("time_to_target_s", "time_to_target_with_eval_s")
    order("time_to_target_with_eval_s", "train_time_s", ("eval_time_s",))
    order("time_to_target_with_eval_s", "wall_to_target_s")
    order("wall_to_target_s", "wall_time_s")
    order("train_time_s", "wall_time_s")
    parts = [get[k] for k in ("train_time_s", "eval_time_s", "warmup_s", "data_s") if get[k] is not None]
    if get["wall_time_s"] is not None and sum(parts) > get["wall_time_s"] + TOLERANCE_S * 4:
        found.append(f"train, evaluation, warm-up and data time add up to {sum(parts):g} s, more than "
                     f"wall_time_s {get['wall_time_s']:g}")
    for key in ("data_s", "wall_to_target_s", "normalised_time_to_target_s"):
        value = record.get(key)
        if value is not None and not (_num(value) is not None and value >= 0):
            found.append(f"{key} is {value!r}: not a finite, non-negative time")
    per_step = record.get("seconds_per_step")
    if per_step is not None and not (_num(per_step) is not None and per_step > 0):
        found.append(f"seconds_per_step is {per_step!r}: not a finite time > 0")
    return found


def _points(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in record.get("curve") or [] if isinstance(p, dict)]


def _met(target: dict[str, Any], value: Any) -> bool:
    got = _num(value)
    if got is None:
        return False
    goal = float(target["value"])
    return got >= goal if target["higher_is_better"] else got <= goal


def _usable_target(record: dict[str, Any]) -> dict[str, Any] | None:
    target = record.get("target")
    if isinstance(target, dict) and isinstance(target.get("metric"), str) and _num(target.get("value")) is not None \
            and isinstance(target.get("higher_is_better"), bool):
        return target
    return None


def reached(record: dict[str, Any]) -> list[str]:
    """`reached_target` agrees with the curve, the final metrics, the stop reason and the time to target."""
    target = _usable_target(record)
    if target is None or record.get("status") != "ok":
        return []
    metric, said = target["metric"], record.get("reached_target")
    curve = [p for p in _points(record) if _num(p.get(metric)) is not None]
    meeting = [p for p in curve if _met(target, p[metric])]
    final = (record.get("final_metrics") or {}).get(metric)
    sign = ">=" if target["higher_is_better"] else "<="
    goal = f"{metric} {sign} {target['value']:g}"
    found = []
    if said is True:
        if curve and not meeting:
            found.append(f"reached_target is true but no curve point has {goal}")
        ttt, first = _num(record.get("time_to_target_s")), meeting[0] if meeting else None
        if ttt is not None and first is not None and _num(first.get("time_s")) is not None \
                and abs(first["time_s"] - ttt) > TOLERANCE_S:
            found.append(f"time_to_target_s {ttt:g} is not the time of the first curve point with {goal} "
                         f"({first['time_s']:g})")
        if not curve and _num(final) is not None and not _met(target, final) and record.get("stop_reason") == "target":
            found.append(f"reached_target is true but the final {metric} {final:g} misses {goal}")
    elif said is False:
        if meeting:
            found.append(f"reached_target is false but the curve has {goal} at step {meeting[0].get('step')}")
        elif _met(target, final) and not curve:
            found.append(f"reached_target is false but the final {metric} {final:g} meets {goal}")
        if record.get("time_to_target_s") is not None:
            found.append(f"reached_target is false but time_to_target_s is {record['time_to_target_s']!r}")
        if record.get("stop_reason") == "target":
            found.append("stop_reason is 'target' but reached_target is false")
        if record.get("steps_to_target") is not None:
            found.append(f"reached_target is false but steps_to_target is {record['steps_to_target']!r}")
    if record.get("stop_reason") == "target" and _num(final) is not None and not _met(target, final):
        found.append(f"the run stopped at its target but the final {metric} {final:g} misses {goal}")
    return found


def curve_order(record: dict[str, Any]) -> list[str]:
    """Curve points run forwards from zero: step, training time and samples never negative, never decrease,
    and end within the run (its train time, steps and samples)."""
    points = _points(record)
    found = []
    rl = _rl_budget(record) is not None  # an RL curve's step counts env steps, the record's steps updates
    for key in CURVE_KEYS:
        values = [(i, _num(p.get(key))) for i, p in enumerate(points)]
        values = [(i, v) for i, v in values if v is not None]
        negative = next(((i, v) for i, v in values if v < 0), None)
        if negative is not None:
            found.append(f"curve point {negative[0]} has {key} {negative[1]:g}: negative")
        done = None if rl else {"step": _num(record.get("steps")), "samples": _num(record.get("samples"))}.get(key)
        if done is not None and values and values[-1][1] > done:
            found.append(f"the curve's last {key} {values[-1][1]:g} is past the run's {done:g}")
        for (_, before), (i, after) in zip(values, values[1:]):
            if after < before:
                found.append(f"curve point {i} has {key} {after:g} after {before:g}: the curve runs backwards")
                break
    train = _num(record.get("train_time_s"))
    last = max((_num(p.get("time_s")) for p in points if _num(p.get("time_s")) is not None), default=None)
    if train is not None and last is not None and last > train + TOLERANCE_S:
        found.append(f"the curve reaches {last:g} s of training time, more than train_time_s {train:g}")
    return found


def _rl_budget(record: dict[str, Any]) -> float | None:
    """The env-step budget of an RL run (its config's budget.max_env_steps), None for other runs."""
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    budget = config.get("budget") if isinstance(config.get("budget"), dict) else {}
    return _num(budget.get("max_env_steps"))


def steps(record: dict[str, Any]) -> list[str]:
    """Steps to target within the steps run, and the steps run within the budget."""
    found = []
    to_target = record.get("steps_to_target")
    run = [v for v in (_num(record.get("steps")), _num(record.get("samples"))) if v is not None]
    if isinstance(to_target, int) and not isinstance(to_target, bool):
        if to_target < 0:
            found.append(f"steps_to_target is {to_target}: negative")
        elif run and to_target > max(run):
            found.append(f"steps_to_target {to_target} is more than the run did (steps {record.get('steps')}, "
                         f"samples {record.get('samples')})")
        last = max((_num(p.get("step")) for p in _points(record) if _num(p.get("step")) is not None), default=None)
        if last is not None and to_target > last:
            found.append(f"steps_to_target {to_target} is past the curve's last step {last:g}")
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    budget = config.get("budget") if isinstance(config.get("budget"), dict) else {}
    override = _num(config.get("max_steps"))
    if _rl_budget(record) is not None:  # RL: the budget counts env steps (the record's samples)
        limit, done, what = override or _rl_budget(record), _num(record.get("samples")), "env steps (samples)"
    else:
        limit, done, what = override or _num(budget.get("max_steps")), _num(record.get("steps")), "steps"
    if limit is not None and done is not None and done > limit:
        found.append(f"the run did {done:g} {what}, more than its budget of {limit:g}")
    return found


def metric_kind(name: str) -> str | None:
    """"unit" ([0, 1], higher is better), "lower" (>= 0, lower is better), "non-negative", or None (unknown)."""
    kind = str(name).rsplit("/", 1)[-1].lower()
    if kind in SIGNED_LOSSES:
        return None
    if kind in UNIT_INTERVAL or kind.split("_", 1)[0] in UNIT_INTERVAL:
        return "unit"
    if kind in NON_NEGATIVE_LOWER_BETTER or kind.endswith("_loss"):
        return "lower"
    if kind in NON_NEGATIVE:
        return "non-negative"
    return None


def _values(record: dict[str, Any]) -> Iterator[tuple[str, str, float]]:
    """(where, metric name, value) of every metric value the record holds."""
    for name, value in (record.get("final_metrics") or {}).items():
        if _num(value) is not None:
            yield f"final_metrics[{name!r}]", name, float(value)
    for i, point in enumerate(_points(record)):
        for name, value in point.items():
            if name not in CURVE_KEYS and _num(value) is not None:
                yield f"curve point {i} {name!r}", name, float(value)


def metric_ranges(record: dict[str, Any]) -> list[str]:
    """Values inside their metric's range; a target inside it too, in the metric's direction."""
    found = []
    for where, name, value in _values(record):
        kind = metric_kind(name)
        if kind == "unit" and not 0 <= value <= 1:
            found.append(f"{where} is {value:g}: outside [0, 1]")
            break
        if kind in ("lower", "non-negative") and value < 0:
            found.append(f"{where} is {value:g}: negative")
            break
    target = _usable_target(record)
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


def identity(record: dict[str, Any]) -> list[str]:
    """Seed, config hash and identity fields against the config; the run id and file name against the record."""
    found = []
    seed = record.get("seed")
    if isinstance(seed, int) and seed < 0:
        found.append(f"seed is {seed}: negative")
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    for key in ("task", "task_version", "model", "profile", "dataset", "seed"):
        if key in config and key in record and config[key] != record[key]:
            found.append(f"{key} is {record[key]!r} but config.{key} is {config[key]!r}")
    digest = record.get("config_hash")
    if digest is not None and config:
        from suite.records import config_hash  # records imports this module

        if digest != config_hash(config):
            found.append(f"config_hash {digest!r} does not match the config ({config_hash(config)!r})")
    run_id = str(record.get("run_id"))
    parts = _RUN_ID.match(run_id)
    if parts:
        for key in ("task", "model", "profile", "seed"):
            if parts[key] != str(record.get(key)):
                found.append(f"run_id {run_id!r} names {key} {parts[key]} but the record's {key} is "
                             f"{record.get(key)!r}")
    path = record.get("_path")
    if path and PurePath(str(path)).suffix == ".json" and PurePath(str(path)).stem != run_id:
        found.append(f"the file is named {PurePath(str(path)).name!r} but holds run {run_id!r}")
    return found


CHECKS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    timestamps, durations, reached, curve_order, steps, metric_ranges, shares, machine, stops, units, identity)
