"""Speed-ups against a baseline machine, model or torch version: per task, the suite's geometric mean, and
the regression gate (`--fail-below`). Few seeds a side: the convergence-normalised times are compared."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from suite.errors import DlbenchError
from suite.results import stats
from suite.results.compare import ACROSS_MODELS, COMPARABLE, fit_only, key_columns, shown_keys
from suite.results.numbers import short_number


@dataclass
class Speedups:
    """Speedups against a baseline: per task (`per_task`), per machine or model (`suite`), and the caveats."""

    dimension: str  # "hardware" or "model": what the baseline names
    baseline: str
    per_task: pd.DataFrame
    suite: pd.DataFrame
    caveats: list[str]


_OTHERS = {"hardware": ["model"], "model": ["hardware"], "torch": ["hardware", "model"]}


def speedups(frame: pd.DataFrame, baseline: str, dimension: str | None = None, normalise: bool = True) -> Speedups:
    """Time-to-target speedup of every machine (or model, or torch version) against `baseline`.

    `baseline` is a hardware label or model name, or with dimension="torch"
    a torch version (the other versions on the same machine are compared).

    Per task (a comparable group x the other dimension): median(baseline) /
    median(other), with a two-sample bootstrap interval; with fewer than
    `FEW_SEEDS` values on a side, of the normalised times where both sides
    have them (`basis`, and the raw speed-up beside it); `normalise` False
    (a time rule other than train: the normalised time is a train-clock
    figure) keeps the raw times. A run without the rule's figure (NaN: an
    older record) is left out, as the tables leave it out. Per machine (or
    model): the geometric mean over tasks reached on both sides, with a
    stratified bootstrap interval (stats.geomean_speedup).
    """
    frame = fit_only(frame)
    dimension, caveats = (dimension, []) if dimension == "torch" else _baseline_dimension(frame, baseline)
    others = _OTHERS[dimension]
    aligned = ACROSS_MODELS if dimension == "model" else COMPARABLE
    rows = []
    for key, group in frame.groupby(aligned + others, dropna=False, sort=True):
        base = _times(group.loc[group[dimension] == baseline, "time_to_target_s"])
        timed = isinstance(dict(zip(aligned + others, key))["target_metric"], str)  # the speed profile has no target
        for subject, sub in group[group[dimension] != baseline].groupby(dimension, sort=True):
            times = _times(sub["time_to_target_s"])
            # throughput ratio other / baseline (> 1: faster), the same bootstrap with the roles swapped
            base_tp = group.loc[group[dimension] == baseline, "throughput"].dropna().to_numpy(dtype=float)
            tp = sub["throughput"].dropna().to_numpy(dtype=float)
            raw = (base, times)
            # Few seeds: steps to target vary more from seed to seed than seconds per step, so the pair
            # compares the normalised times (reference median steps x each run's seconds per step).
            norm = (_normalised(group.loc[group[dimension] == baseline]), _normalised(sub))
            normalised = normalise and min(base.size, times.size) < FEW_SEEDS and norm[0].size > 0 \
                and norm[1].size > 0
            pair = norm if normalised else raw
            note = _pair_note(base, times, subject) if timed else "no target: the throughput ratio is the figure"
            if normalised and timed:
                note = "; ".join(filter(None, [note, f"normalised time (fewer than {FEW_SEEDS} seeds); raw "
                                                     f"speed-up {short_number(stats.speedup(base, times))}"]))
            rows.append({**dict(zip(aligned + others, key)), dimension: subject,
                         "throughput_ratio": stats.speedup(tp, base_tp) if base_tp.size and tp.size else math.nan,
                         "throughput_interval": stats.speedup_spread(tp, base_tp) if base_tp.size else None,
                         "baseline_s": stats.median(base) if timed else math.nan,
                         "time_s": stats.median(times) if timed else math.nan,
                         "speedup": stats.speedup(*pair) if timed else math.nan,
                         "interval": stats.speedup_spread(*pair) if timed and pair[0].size else None,
                         "speedup_raw": stats.speedup(base, times) if timed else math.nan,
                         "basis": ("normalised" if normalised else "raw") if timed else "throughput",
                         "n_baseline": base.size, "n": times.size, "note": note,
                         # what the suite figure resamples: the times (baseline, other), or for a task
                         # without a target the throughputs (other, baseline), so that either ratio is > 1 when faster
                         "_pair": pair if timed else (tp, base_tp)})
    per_task = pd.DataFrame(rows)
    suite_rows = []
    for (subject, profile), sub in ([] if per_task.empty else per_task.groupby([dimension, "profile"], sort=True)):
        row, caveat = _suite_row(dimension, subject, profile, sub)
        suite_rows.append(row)
        caveats.append(caveat)
    caveats += _general_caveats(frame, dimension, baseline)
    return Speedups(dimension, baseline, per_task, pd.DataFrame(suite_rows), caveats)


FEW_SEEDS = 5  # below this many values a side, speed-ups use the convergence-normalised time where it exists


def _times(column: pd.Series):
    """A cell's times-to-target: `inf` for a missed target stays, NaN (no figure under the rule) goes."""
    values = column.to_numpy(dtype=float)
    return values[~pd.isna(values)]


def _normalised(rows: pd.DataFrame):
    """The normalised times of some rows, `inf` for a missed target (runs without a reference have none)."""
    if "normalised_time_to_target_s" not in rows:
        return rows["time_to_target_s"].to_numpy(dtype=float)[:0]
    return _times(rows["normalised_time_to_target_s"])


def _pair_note(base, times, subject: str) -> str:
    if base.size == 0:
        return "no baseline run"
    missed = [name for name, t in (("baseline", base), (subject, times)) if stats.median(t) == math.inf]
    return f"not reached on {' and '.join(missed)}: not in the geometric mean" if missed else ""


def _baseline_dimension(frame: pd.DataFrame, baseline: str) -> tuple[str, list[str]]:
    labels = set(frame["hardware"]) if not frame.empty else set()
    models = set(frame["model"]) if not frame.empty else set()
    if baseline in labels:
        both = [f"{baseline!r} is also a model name: taken as the hardware label"] if baseline in models else []
        return "hardware", both
    if baseline in models:
        return "model", []
    raise DlbenchError(f"--baseline {baseline!r} is neither a hardware label ({', '.join(sorted(labels)) or 'none'})"
                       f" nor a model ({', '.join(sorted(models)) or 'none'}) in these records: use one of them")


def _figure(rows: pd.DataFrame) -> pd.Series:
    """Each task's figure: its time-to-target speed-up, or without a target its throughput ratio."""
    return rows["speedup"].where(rows["basis"] != "throughput", rows["throughput_ratio"])


def _suite_row(dimension: str, subject: str, profile: str, sub: pd.DataFrame) -> tuple[dict[str, Any], str]:
    """The suite figure of one machine (or model) on one profile over its tasks, and the caveat line under it."""
    figure = _figure(sub)
    usable = sub[figure.notna()]
    no_base = sub["n_baseline"] == 0
    lacking = figure.isna() & ~no_base
    untimed = sub["basis"] == "throughput"
    missed, no_throughput = int((lacking & ~untimed).sum()), int((lacking & untimed).sum())
    no_base = int(no_base.sum())
    pairs = list(usable["_pair"])
    point, interval = stats.geomean_speedup(pairs)[0], stats.geomean_spread(pairs)
    single = int(sum(max(b.size, o.size) < 2 for b, o in usable["_pair"]))
    left = [f"{missed} not reached on one side" if missed else "",
            f"{no_throughput} without a throughput on one side" if no_throughput else "",
            f"{no_base} without a baseline run" if no_base else "",
            f"{single} with one seed each side (no uncertainty from them)" if single else ""]
    note = "; ".join(x for x in left if x)
    measure = " and ".join(sorted({"throughput" if b == "throughput" else "time-to-target" for b in sub["basis"]}))
    caveat = (f"{subject} ({profile}): geometric mean of {measure} speed-ups over {len(usable)} of {len(sub)} tasks"
              + (f" ({note})" if note else ""))
    return {dimension: subject, "profile": profile, "tasks": len(usable), "of": len(sub), "geomean_speedup": point,
            "lo": interval[0] if interval else math.nan, "hi": interval[1] if interval else math.nan,
            "spread": interval[2] if interval else ""}, caveat


def _general_caveats(frame: pd.DataFrame, dimension: str, baseline: str) -> list[str]:
    lines = [f"CI: {stats.METHOD}, given from {stats.MIN_FOR_CI} seeds on; with fewer, 'range' is the range "
             "of the ratios of the seeds' times (no confidence attached)",
             "a task is one comparable group (task, version, profile, dataset, target, run settings) x "
             + {"hardware": "model", "model": "machine", "torch": "machine x model"}[dimension]
             + f"; speedup = median time-to-target of {baseline} / median of the other (> 1: faster)"]
    if dimension == "hardware" and "precision" in frame:
        used = frame.groupby("hardware")["precision"].agg(lambda s: ", ".join(sorted(set(map(str, s)))))
        if used.nunique() > 1:
            lines.append("the machines ran in different precisions (separate rows, never one cell): "
                         + "; ".join(f"{hw}: {p}" for hw, p in used.items()))
    if dimension == "hardware":
        versions = frame.groupby("hardware")["torch"].agg(lambda s: ", ".join(sorted(set(map(str, s)))))
        if versions.nunique() > 1:
            lines.append("the machines also differ in software: torch " +
                         "; ".join(f"{hw}: {v}" for hw, v in versions.items()))
    return lines


def speedup_tables(result: Speedups) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-task table, suite table) with cells for people."""
    if result.per_task.empty:
        return pd.DataFrame(), pd.DataFrame()
    per = result.per_task
    keyed = shown_keys(per)
    shown = keyed[key_columns(keyed) + _OTHERS[result.dimension] + [result.dimension]].copy()
    untimed = per["basis"] == "throughput"
    shown[f"baseline ({result.baseline}) s"] = ["no target" if u else short_number(v) if v == v else "no run"
                                                for v, u in zip(per["baseline_s"], untimed)]
    shown["time_s"] = ["no target" if u else short_number(v) for v, u in zip(per["time_s"], untimed)]
    shown["speedup"] = [_speedup_cell(r.speedup, r.interval) for r in per.itertuples()]
    shown["throughput_ratio"] = [_speedup_cell(r.throughput_ratio, r.throughput_interval) for r in per.itertuples()]
    shown["note"] = per["note"]
    suite = result.suite.copy()
    suite["geomean_speedup"] = [_speedup_cell(r.geomean_speedup, None if r.lo != r.lo else (r.lo, r.hi, r.spread))
                                for r in suite.itertuples()]
    suite["tasks"] = [f"{r.tasks}/{r.of}" for r in suite.itertuples()]
    return shown, suite.drop(columns=["of", "lo", "hi", "spread"])


def _speedup_cell(value: float, spread: tuple[float, float, str] | None) -> str:
    """"2x CI [1.8, 2.2]" (5+ seeds a side), "2x range [1.5, 2.6]" (fewer), "2x (one seed: no spread)"."""
    if value != value:
        return "-"
    if not spread:
        return f"{value:.3g}x (one seed: no spread)"
    name = "range" if spread[2] == stats.RANGE else "CI"
    return f"{value:.3g}x {name} [{spread[0]:.3g}, {spread[1]:.3g}]"


def slower_than(value: float, spread: stats.Spread | None, threshold: float) -> bool:
    """Whether a speed-up is below `threshold` beyond its noise: its interval (CI or range) lies entirely
    below it, or, without one (one seed a side), the figure itself does. No figure never fails."""
    if not isinstance(value, (int, float)) or math.isnan(value):
        return False
    return spread[1] < threshold if spread else value < threshold


def gate(result: Speedups, threshold: float) -> list[str]:
    """The regression gate: one line per task or suite figure `slower_than` `threshold` (empty: passed).

    A task with a target is judged on its time-to-target speed-up, one without (speed profile) on
    its throughput ratio; a suite row on its geometric mean.
    """
    lines = []
    for row in result.per_task.to_dict("records"):
        timed = isinstance(row["target_metric"], str)
        value, spread = (row["speedup"], row["interval"]) if timed \
            else (row["throughput_ratio"], row["throughput_interval"])
        if slower_than(value, spread, threshold):
            what = "time-to-target speed-up" if timed else "throughput ratio"
            lines.append(f"{row['task']} / {row['model']} ({row['profile']}) on {row[result.dimension]}: {what} "
                         f"{_speedup_cell(value, spread)} < {threshold:g}")
    for row in result.suite.to_dict("records"):
        spread = None if row["lo"] != row["lo"] else (row["lo"], row["hi"], row["spread"])
        if slower_than(row["geomean_speedup"], spread, threshold):
            lines.append(f"suite on {row[result.dimension]}: geometric mean "
                         f"{_speedup_cell(row['geomean_speedup'], spread)} < {threshold:g}")
    return lines
