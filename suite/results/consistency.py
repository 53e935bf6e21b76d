"""Does a record agree with itself? Semantic checks of a schema-valid record. Pure functions.

The schema says each field has the right type; these checks say the fields
can all be true at once: times in their order, `reached_target` against
the target, the curve and the final metrics, a curve that runs forwards,
steps within the run and its budget, metric values inside their metric's
range and targets in their metric's direction, shares in [0, 1], a machine
that can exist, known stop reasons and throughput units, energy that adds
up, the config hash and seed against the config, and the file name against
the run id. `problems(record)` returns one line per contradiction;
`suite.results.check` makes such a record unfit, so it never reaches a table,
and `--resume` runs it again.

Figures are rounded to 4 decimals when recorded, so comparisons of times
allow `TOLERANCE_S`. A field a record lacks or holds as null is not
checked: older records and the fields still being added (`wall_to_target_s`,
`data_s`, `seconds_per_step`, `eval_cadence`, ...) pass while absent.
"""
from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any, Callable

from suite.results.numbers import finite as _num
from suite.results.plausible import (CURVE_KEYS, curve_points, met, usable_target, energy, machine, metric_ranges, shares,
                                      stops, units)

TOLERANCE_S = 2e-3  # two roundings to 4 decimals, and a little float noise
CLOCK_TOLERANCE_S = 2.0  # started_at / finished_at have whole seconds

_RUN_ID = re.compile(r"^(?P<task>[^.]+)\.(?P<model>[^.]+)\.(?P<profile>[^.]+)\.s(?P<seed>\d+)\.\d{8}T\d{6}\.[0-9a-f]{6}$")


def problems(record: dict[str, Any]) -> list[str]:
    """One line per way `record` contradicts itself (empty: consistent)."""
    found: list[str] = []
    for check in CHECKS:
        found += check(record)
    return found


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


def reached(record: dict[str, Any]) -> list[str]:
    """`reached_target` agrees with the curve, the final metrics, the stop reason and the time to target."""
    target = usable_target(record)
    if target is None or record.get("status") != "ok":
        return []
    metric, said = target["metric"], record.get("reached_target")
    curve = [p for p in curve_points(record) if _num(p.get(metric)) is not None]
    meeting = [p for p in curve if met(target, p[metric])]
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
        if not curve and _num(final) is not None and not met(target, final) and record.get("stop_reason") == "target":
            found.append(f"reached_target is true but the final {metric} {final:g} misses {goal}")
    elif said is False:
        if meeting:
            found.append(f"reached_target is false but the curve has {goal} at step {meeting[0].get('step')}")
        elif met(target, final) and not curve:
            found.append(f"reached_target is false but the final {metric} {final:g} meets {goal}")
        if record.get("time_to_target_s") is not None:
            found.append(f"reached_target is false but time_to_target_s is {record['time_to_target_s']!r}")
        if record.get("stop_reason") == "target":
            found.append("stop_reason is 'target' but reached_target is false")
        if record.get("steps_to_target") is not None:
            found.append(f"reached_target is false but steps_to_target is {record['steps_to_target']!r}")
    if record.get("stop_reason") == "target" and _num(final) is not None and not met(target, final):
        found.append(f"the run stopped at its target but the final {metric} {final:g} misses {goal}")
    return found


def curve_order(record: dict[str, Any]) -> list[str]:
    """Curve points run forwards from zero: step, training time and samples never negative, never decrease,
    and end within the run (its train time, steps and samples)."""
    points = curve_points(record)
    found = []
    rl = _rl_budget(record) is not None  # an RL curve's step counts env steps, the record's steps updates
    present = set().union(*points)
    for key in (key for key in CURVE_KEYS if key in present):
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
        last = max((_num(p.get("step")) for p in curve_points(record) if _num(p.get("step")) is not None), default=None)
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
        from suite.results.records import config_hash  # records imports this module

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
    name = os.path.basename(str(path)) if path else ""
    if name.endswith(".json") and name != ".json" and name[:-5] != run_id:  # suffix ".json", stem not the run id
        found.append(f"the file is named {name!r} but holds run {run_id!r}")
    return found


CHECKS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    timestamps, durations, reached, curve_order, steps, metric_ranges, shares, machine, stops, units, identity,
    energy)
