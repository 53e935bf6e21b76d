"""One score per machine: these results against a reference machine, per profile.

Per task (a comparable group, `compare.COMPARABLE`, x model) the figure is the speed-up of
time-to-target, median(reference) / median(here) (> 1: this machine is faster), or on a
profile without targets (speed) the ratio of throughputs, median(here) / median(reference).
Under the train rule, with fewer than `speedup.FEW_SEEDS` seeds on a side the time is the
convergence-normalised one where both sides have it (`speedup.speedups` decides). A run that
missed its target counts at its budget, on the rule's own clock (`at_budget`), as AlgoPerf counts
a missed target at the budget, so a miss makes a machine look slow instead of leaving the task out. The suite figure of a
profile is the geometric mean of its tasks' figures with the bootstrap interval of
`stats.geomean_spread`. Only rows with a comparable reference cell enter; the others are listed
once each, with the reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from suite.results import compare, records, stats
from suite.errors import DlbenchError
from suite.results import speedup

DEFAULT_REFERENCE = records.SHIPPED_REFERENCE
REFERENCE = "reference"  # the hardware label the reference rows take inside the pooled frame
TASK_KEYS = compare.COMPARABLE + ["model"]


@dataclass
class ProfileScore:
    """The score of one profile: per-task figures (`per_task`), the suite figure and its spread."""

    machine: str
    profile: str
    per_task: pd.DataFrame  # speedup.speedups rows plus figure / figure_spread / basis_figure
    geomean: float
    spread: stats.Spread | None
    measure: str  # "time-to-target" or "throughput" or both


@dataclass
class Score:
    """The score of some results against a reference machine, per profile, and the rows left out."""

    reference_label: str
    subjects: list[str]
    profiles: list[ProfileScore]
    left_out: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def resolve_reference(reference: str | Path | None, default_dir: Path = DEFAULT_REFERENCE) -> tuple[pd.DataFrame, str, list[str]]:
    """(fit reference rows, the reference machine's label, warnings) for `--reference DIR|LABEL`.

    A folder is read as it is and must hold one machine; any other text is a machine label matched
    case-insensitively by prefix against the records under `default_dir` ("nvidia h100" finds
    "NVIDIA H200"). An unknown or ambiguous label lists the labels there.
    """
    if reference is None or Path(reference).is_dir():
        folder = Path(reference) if reference is not None else default_dir
        data = compare.pool([folder])
        labels = _labels(data.frame)
        if not labels:
            raise DlbenchError(f"score: --reference {folder} holds no fit runs: give a results folder of the "
                               "reference machine or a machine label")
        if len(labels) > 1:
            raise DlbenchError(f"score: --reference {folder} holds several machines ({'; '.join(labels)}): "
                               "give one of these labels as --reference")
        return data.frame, labels[0], data.warnings
    data = compare.pool([default_dir])
    labels = _labels(data.frame)
    wanted = str(reference).strip().casefold()
    exact = [label for label in labels if label.casefold() == wanted]
    matches = exact or [label for label in labels if label.casefold().startswith(wanted)]
    if len(matches) != 1:
        how = "matches several machines" if matches else "matches no machine"
        raise DlbenchError(f"score: --reference {str(reference)!r} {how} in {default_dir}; labels there: "
                           f"{'; '.join(labels) or 'none'}")
    return data.frame[data.frame["hardware"] == matches[0]], matches[0], data.warnings


def shipped_references(default_dir: Path | None = None) -> list[tuple[pd.DataFrame, str, list[str]]]:
    """(fit rows, label, warnings) of each reference machine under `default_dir` (DEFAULT_REFERENCE):
    what `dlbench score` without `--reference` scores against, one machine at a time. The shipped
    records' warnings are left out (the machines' rows set apart by precision, the skipped runs): the
    project's tests check those records."""
    default_dir = DEFAULT_REFERENCE if default_dir is None else default_dir
    data = compare.pool([default_dir]) if default_dir.is_dir() else None
    labels = _labels(data.frame) if data is not None else []
    if not labels:
        raise DlbenchError(f"score: no reference records under {default_dir}: give --reference DIR|LABEL")
    return [(data.frame[data.frame["hardware"] == label], label, []) for label in labels]


def _labels(frame: pd.DataFrame) -> list[str]:
    return sorted({str(label) for label in frame.get("hardware", pd.Series(dtype=str)).dropna()})


def at_budget(frame: pd.DataFrame, time_rule: str = "train") -> pd.DataFrame:
    """`frame` whose missed targets count at the budget instead of `inf`, on the clock of `time_rule`.

    A run that used its whole budget counts at that clock's reading when it stopped (train time; plus
    evaluation under "train+eval", plus warm-up under "submission"; the wall clock; the train segments'
    energy). A run that stopped before its budget (diverged) counts at that reading plus the train time
    its budget still held (`max_time_s`; the energy of that time at its train power), and stays `inf`
    without a time budget. Under the train rule the normalised time (`speedup.speedups`' basis below
    `FEW_SEEDS` seeds) counts them the same way, so a miss never borrows the reference's convergence.
    """
    frame = frame.copy()
    for column in ("train_time_s", "eval_time_s", "warmup_s", "wall_time_s", "max_time_s", "train_energy_j"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame else math.nan
    missed = frame["target_metric"].notna() & (frame["time_to_target_s"].astype(float) == math.inf)
    train = frame["train_time_s"]
    spent = {"train+eval": train + frame["eval_time_s"].fillna(0.0), "submission": train + frame["warmup_s"].fillna(0.0),
             "wall": frame["wall_time_s"], "energy": frame["train_energy_j"]}.get(time_rule, train)
    early = frame["status"] != "ok" if "status" in frame else pd.Series(False, index=frame.index)
    left = (frame["max_time_s"] - train).clip(lower=0.0).fillna(math.inf).where(early, 0.0)
    if time_rule == "energy":
        left = left * (frame["train_energy_j"] / train)
    counted = spent + left
    frame.loc[missed, "time_to_target_s"] = counted[missed]
    if time_rule == "train" and "normalised_time_to_target_s" in frame:
        frame["normalised_time_to_target_s"] = frame["normalised_time_to_target_s"].astype(float)
        frame.loc[missed, "normalised_time_to_target_s"] = counted[missed]
    return frame


def score(results: Iterable[Path | str], reference: pd.DataFrame, reference_label: str,
          time_rule: str = "train") -> Score:
    """Score the machines of `results` against the `reference` rows (one machine, `reference_label`);
    time-to-target follows `time_rule` (`compare.TIME_RULES`: "energy" scores joules to the target).

    Raises DlbenchError when no row of `results` has a comparable reference row, saying why.
    """
    data = compare.pool(results)
    here, notes = compare.with_time_rule(data.frame, time_rule)
    data.warnings.extend(notes)
    if here.empty:
        raise DlbenchError(f"score: no fit runs in {', '.join(map(str, results))}: run `python run_all.py` first")
    subjects = _labels(here)
    ref = compare.with_time_rule(reference, time_rule)[0].copy()
    ref["hardware"] = REFERENCE
    ref["run_id"] = "reference:" + ref["run_id"].astype(str)  # a folder scored against itself keeps both sides
    matched = _has_reference(here, ref)
    left_out = _left_out(here[~matched], ref)
    if not matched.any():
        raise DlbenchError("score: no run has a comparable run on the reference machine "
                           f"({reference_label}): " + "; ".join(left_out[:5])
                           + (f"; and {len(left_out) - 5} more" if len(left_out) > 5 else ""))
    here = here[matched]
    frame = at_budget(pd.concat([here, ref[_has_reference(ref, here)]], ignore_index=True), time_rule)
    result = speedup.speedups(frame, REFERENCE, "hardware", normalise=time_rule == "train")
    profiles = [_profile_score(machine, profile, rows)
                for (machine, profile), rows in result.per_task.groupby(["hardware", "profile"], sort=True)]
    left_out += [f"{row['task']} / {row['model']} ({row['profile']}): no figure ({_why_no_figure(row)})"
                 for p in profiles for row in p.per_task.to_dict("records") if not _usable(row["figure"])]
    return Score(reference_label, subjects, profiles, left_out, data.warnings)


def _keys(frame: pd.DataFrame) -> pd.Series:
    """One string per row naming its comparable group and model."""
    return frame[TASK_KEYS].astype(object).map(str).agg(" | ".join, axis=1) if not frame.empty else pd.Series(dtype=str)


def _has_reference(frame: pd.DataFrame, other: pd.DataFrame) -> pd.Series:
    """Whether each row of `frame` has a row of `other` in the same comparable group and model."""
    return _keys(frame).isin(set(_keys(other))) if not frame.empty else pd.Series(dtype=bool)


def _left_out(rows: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    """One line per task, model and profile of `rows` that has no comparable reference cell, saying why."""
    lines = []
    for (task, model, profile), group in rows.groupby(["task", "model", "profile"], sort=True):
        same = reference[(reference["task"] == task) & (reference["model"] == model)
                         & (reference["profile"] == profile)]
        if same.empty:
            lines.append(f"{task} / {model} ({profile}): no run on the reference machine")
            continue
        mine, theirs = _shown(group[compare.COMPARABLE]), _shown(same[compare.COMPARABLE])
        differ = [c for c in compare.COMPARABLE if set(mine[c]) != set(theirs[c])]
        parts = [f"{c} {', '.join(sorted(set(mine[c])))} here vs {', '.join(sorted(set(theirs[c])))} there"
                 for c in differ]
        lines.append(f"{task} / {model} ({profile}): not comparable: {'; '.join(parts)}")
    return lines


def _shown(columns: pd.DataFrame) -> pd.DataFrame:
    """Cells as text for the why-not line, every kind of missing value (None, NaN) as one "none"."""
    return columns.astype(object).map(lambda v: "none" if v is None or (isinstance(v, float) and v != v) else str(v))


def _profile_score(machine: str, profile: str, per_task: pd.DataFrame) -> ProfileScore:
    """Each task's figure (time speed-up where the task has a target, else throughput ratio) and their
    geometric mean with its spread."""
    per_task = per_task.copy()
    figures, spreads, bases, pairs = [], [], [], []
    for row in per_task.to_dict("records"):
        if row["basis"] != "throughput":  # a task with a target (`speedup.speedups` says which basis)
            figures.append(row["speedup"])
            spreads.append(row["interval"])
            bases.append(f"time-to-target ({row['basis']})")
        else:
            figures.append(row["throughput_ratio"])
            spreads.append(row["throughput_interval"])
            bases.append("throughput")
        if _usable(figures[-1]):
            pairs.append(row["_pair"])  # the times, or the throughputs (here, reference)
    per_task["figure"], per_task["figure_spread"], per_task["figure_basis"] = figures, spreads, bases
    point = stats.geomean_speedup(pairs)[0] if pairs else math.nan
    measure = " and ".join(sorted({b.split(" (")[0] for b in bases}))
    return ProfileScore(machine, profile, per_task, point, stats.geomean_spread(pairs), measure)


def _why_no_figure(row: dict[str, Any]) -> str:
    """Why a comparable task has no speed-up: a zero time (a model that does not train), or no value."""
    if not isinstance(row["target_metric"], str):
        return "no throughput on a side"
    if row["baseline_s"] == 0 or row["time_s"] == 0:
        return "a time of 0 s: the model does not train"
    return row["note"] or "no time on a side"


def _usable(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def tables(result: Score) -> dict[str, pd.DataFrame]:
    """Per machine and profile, one row per task: its key, what the figure measures, and the figure."""
    out = {}
    for p in result.profiles:
        per = p.per_task
        table = pd.DataFrame({
            "task": per["task"], "v": per["task_version"].astype(str), "model": per["model"],
            "target": [f"{m} {'>=' if h else '<='} {v:g}" if isinstance(m, str) else "none (speed)"
                       for m, v, h in zip(per["target_metric"], per["target_value"], per["higher_is_better"])],
            "precision": per["precision"].astype(str) if "precision" in per else "-",
            "measure": per["figure_basis"], "runs (ref / here)": [f"{b} / {n}" for b, n in
                                                                  zip(per["n_baseline"], per["n"])],
            "speed-up": [speedup._speedup_cell(v, s) for v, s in zip(per["figure"], per["figure_spread"])],
        })
        out[f"{p.profile} on {p.machine}"] = table.reset_index(drop=True)
    return out


def suite_lines(result: Score) -> list[str]:
    """One line per machine and profile: the suite figure, what it is made of, against which reference."""
    lines = []
    for p in result.profiles:
        usable = sum(_usable(v) for v in p.per_task["figure"])
        lines.append(f"score {p.profile}: {p.machine} vs {result.reference_label}: "
                     f"{speedup._speedup_cell(p.geomean, p.spread)} (geometric mean of {p.measure} speed-ups "
                     f"over {usable} of {len(p.per_task)} tasks; > 1: faster than the reference)")
    return lines


def gate(result: Score, threshold: float) -> list[str]:
    """The regression gate on a score: one line per task or suite figure slower than `threshold` beyond
    its noise (`speedup.slower_than`); empty when it passes."""
    lines = []
    for p in result.profiles:
        for row in p.per_task.to_dict("records"):
            if speedup.slower_than(row["figure"], row["figure_spread"], threshold):
                lines.append(f"{row['task']} / {row['model']} ({p.profile}) on {p.machine}: {row['figure_basis']} "
                             f"{speedup._speedup_cell(row['figure'], row['figure_spread'])} < {threshold:g}")
        if speedup.slower_than(p.geomean, p.spread, threshold):
            lines.append(f"suite {p.profile} on {p.machine}: {speedup._speedup_cell(p.geomean, p.spread)}"
                         f" < {threshold:g}")
    return lines


def closing_lines(results: Path, profile: str, reference_dir: Path | None = None) -> list[str]:
    """The lines `run_all.py` ends with: per reference machine under `reference_dir` (default
    DEFAULT_REFERENCE) that has runs of `profile`, the score of the machines in `results` on that
    profile; one line saying there is none when no reference has runs of it."""
    folder = DEFAULT_REFERENCE if reference_dir is None else reference_dir
    try:
        machines = [(rows[rows["profile"] == profile], label) for rows, label, _ in shipped_references(folder)]
    except DlbenchError:  # no reference records at all
        machines = []
    machines = [(rows, label) for rows, label in machines if not rows.empty]
    if not machines:
        return [f"score: no reference records of the {profile} profile ship in {folder}: no score"]
    lines = []
    for rows, label in machines:
        try:
            result = score([results], rows, label)
        except DlbenchError as exc:
            why = str(exc).removeprefix("score: ")
            why = why if len(why) <= 240 else why[:239] + "\u2026"
            lines.append(f"score against {label}: none ({why}; `dlbench score` lists the runs left out)")
            continue
        for p in result.profiles:
            if p.profile != profile:
                continue
            usable = sum(_usable(v) for v in p.per_task["figure"])
            lines.append(f"score against {label}: {p.machine} {speedup._speedup_cell(p.geomean, p.spread)} over "
                         f"{usable} of {len(p.per_task)} tasks on {profile} (geometric mean of {p.measure} "
                         "speed-ups; > 1: faster than the reference; `dlbench score` shows each task)")
    return lines
