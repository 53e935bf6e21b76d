"""Records -> comparison tables (pandas), built only from records.

`pool` reads any number of results folders (a run found twice counts once)
and keeps the runs `suite.results.check` finds fit. `to_frame` flattens records,
one row per run. `summarize` gives one numeric row per cell: median,
bootstrap interval and n for each measure (`suite.results.stats` states the method).
`to_table` renders cells for people: by model (machines as rows), by
hardware (machine labels as columns) or by software (torch versions as
columns). Speed-ups against a baseline are `suite.results.speedup`'s; Markdown and
CSV files of a table are `suite.reporting.markdown`'s.

Runs share a cell only when they are comparable: same task, task version,
profile, dataset and target, and the same run settings `suite.results.cells` keys
(the precision that ran, compile, world size, pretrained weights, dataset
content, configuration, variant) (`COMPARABLE`). Otherwise they get
separate rows, a setting that differs inside the pool shows as an extra
column, and `incomparable_notes` says which fields differ. A run done twice
(same configuration, seed and commit on one machine) counts once, as its
newest record (`suite.results.check.reruns`). Each cell gives its median and, from
5 values on, a 95% bootstrap interval ("CI"); with 2-4 values its range
("range"), never called an interval (`suite.results.stats.spread`).

Time-to-target follows one of the rules of `TIME_RULES` (`--time`; docs/methodology.md
names each): "train" (train segments only, the record's `time_to_target_s`),
"train+eval" (evaluation included), "submission" (AlgoPerf's submission time:
warm-up and compilation included, evaluations untimed), "wall" (MLPerf's
time-to-train: the clock never paused from the first touch of the data) and
"normalised" (the task's reference median steps x this run's seconds per
step). `with_time_rule` puts the chosen one in the `time_to_target_s` column
that every table reads. Quality is the test metric at the stopping
evaluation (`Target.quality_metric`): runs stop on validation, test reports.

Time-to-target of a run that did not reach the target is `inf` under every
rule, the normalised one included, so it is never dropped: it pulls the
median up and shows as "not reached".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from suite.results import check, records, stats
from suite.results.cells import KEYED, cell_settings, threads_key
from suite.errors import DlbenchError
from suite.results.numbers import short_number
from suite.results.measures import GROUPINGS, MEASURES, TIME_RULES  # noqa: F401 - read as compare.X too

COMPARABLE = ["task", "task_version", "profile", "dataset", "target_metric", "target_value", "higher_is_better",
              *KEYED]
# Models set side by side (speedups against a model, one plot per task) differ in their recipes by design:
# there the configuration key, which holds the recipe, is left out of the alignment.
ACROSS_MODELS = [c for c in COMPARABLE if c != "config"]
_SHOWN_KEYS = ["task", "v", "profile", "dataset", "target"]


@dataclass
class Pool:
    """The records read from some folders, as a frame of fit runs, and the warning lines."""

    records: list[dict[str, Any]]
    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def pool(paths: Iterable[Path | str]) -> Pool:
    """Read every record under `paths`; warn once per unreadable file, duplicate, unfit run or unit mix."""
    paths = list(paths)
    warnings: list[str] = []
    recs = records.read_records(paths, warn=warnings.append)
    warnings += check.empty_folders(paths, recs)
    superseded = check.reruns(recs)  # one search serves the warnings and the frame
    warnings += check.duplicates(recs, superseded) + check.repeated_seeds(recs, superseded)
    warnings += check.left_out(recs)
    warnings += check.unit_conflicts(recs)
    frame = to_frame(recs, superseded)
    if not frame.empty:
        frame = frame[frame["fit"]].drop(columns="fit").reset_index(drop=True)
    return Pool(recs, frame, warnings + incomparable_notes(frame))


def to_frame(recs: Iterable[dict[str, Any]], superseded: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per run (identical duplicates count once, conflicting ones not at all), flat columns; `fit` says whether tables use it.
    `superseded` is `check.reruns(recs)`, computed here when not given.

    time_to_target_s is `inf` for a run that did not reach the target;
    final_quality, throughput and peak_mem_mb are NaN for a diverged run.
    """
    recs = list(recs)
    rows, seen = [], check.conflicting_ids(recs)  # one run_id, different contents: no table uses either
    if superseded is None:
        superseded = check.reruns(recs)  # a run done again: only its newest record counts
    for r in recs:
        if r["run_id"] in seen:
            continue
        seen.add(r["run_id"])
        target = r.get("target") or {}
        metric = target.get("metric")
        ok = r["status"] == "ok"
        reached = records.reached(r)
        throughput = (r.get("throughput") or {}) if ok else {}
        rows.append({
            "run_id": r["run_id"], "task": r["task"], "task_version": r["task_version"],
            "profile": r["profile"], "dataset": r.get("dataset"), "model": r["model"], "seed": r["seed"],
            "status": r["status"], "stop_reason": r.get("stop_reason"),
            "hardware": (r.get("hardware") or {}).get("label"), "threads": threads_key(r),
            "torch": (r.get("software") or {}).get("torch"),
            # no target (the speed profile): NaN, never None, so frames built apart from each other
            # (a speed-only folder, a mixed one) key their cells alike
            "target_metric": metric if metric is not None else math.nan,
            "target_value": target.get("value") if target.get("value") is not None else math.nan,
            "higher_is_better": target.get("higher_is_better", True),
            "reached": reached,
            "time_to_target_s": float(r["time_to_target_s"]) if reached else math.inf,
            **{field: _rule_time(r, field, reached) for field, _ in TIME_RULES.values() if field != "time_to_target_s"},
            "convergence_inside": (r.get("convergence") or {}).get("inside"),
            "has_reference": bool((r.get("convergence") or {}).get("reference_median_steps")),
            "train_time_s": r.get("train_time_s"),
            # the clocks' readings when the run stopped, and its time budget: where `score` counts a miss
            "eval_time_s": r.get("eval_time_s"), "warmup_s": r.get("warmup_s"), "wall_time_s": r.get("wall_time_s"),
            "max_time_s": _max_time(r.get("config") or {}),
            "train_energy_j": ((r.get("energy") or {}).get("segments_j") or {}).get("train"),
            "final_quality": (r.get("final_metrics") or {}).get(quality_metric(metric)) if ok and metric else None,
            "throughput": throughput.get("value"), "throughput_unit": throughput.get("unit"),
            "peak_mem_mb": r.get("peak_mem_mb") if ok else None,
            "utilisation": r.get("utilisation") if ok else None,
            "budget": _budget(r.get("config") or {}), "error": r.get("error"),
            "fit": check.is_fit(r) and r["run_id"] not in superseded,
            **cell_settings(r), "precision_used": (r.get("config") or {}).get("precision"),
        })
    frame = pd.DataFrame(rows)
    for column in ("final_quality", "throughput", "peak_mem_mb", "train_time_s", "utilisation", "train_energy_j",
                   "eval_time_s", "warmup_s", "wall_time_s", "max_time_s"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return _threads_in_label(frame)


def _threads_in_label(frame: pd.DataFrame) -> pd.DataFrame:
    """A machine label whose runs used several torch thread counts becomes one label per count
    ("box (4 threads)"): the thread count is part of the machine, so such runs never pool."""
    if frame.empty:
        return frame
    counts = frame.groupby("hardware", dropna=False)["threads"].transform("nunique")
    several = counts > 1
    if several.any():
        frame = frame.copy()
        frame.loc[several, "hardware"] = [f"{label} ({threads} threads)" for label, threads
                                          in zip(frame.loc[several, "hardware"], frame.loc[several, "threads"])]
    return frame


def quality_metric(target_metric: str | None) -> str | None:
    """The metric tables report as quality: a validation target's metric on the test split ("val/accuracy"
    -> "test/accuracy"); a target on any other split (records of task versions that stopped on test) is its own."""
    if not isinstance(target_metric, str):
        return None
    split, _, name = target_metric.partition("/")
    return f"test/{name}" if split == "val" and name else target_metric


def _rule_time(record: dict[str, Any], field: str, reached: bool) -> float:
    """One rule's time-to-target: inf when not reached, NaN when the record lacks the figure (an older
    record, or no reference)."""
    if not reached:
        return math.inf
    value = record.get(field)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def with_time_rule(frame: pd.DataFrame, rule: str = "train") -> tuple[pd.DataFrame, list[str]]:
    """`frame` whose time_to_target_s follows `rule` (a `TIME_RULES` key), and a warning line if runs lack it."""
    if rule not in TIME_RULES:
        raise DlbenchError(f"--time {rule!r} is not one of {', '.join(TIME_RULES)}")
    if rule == "train" or frame.empty:
        return frame, []
    field = TIME_RULES[rule][0]
    frame = frame.copy()
    if field not in frame:
        frame[field] = math.nan
    missing = int(frame[field].isna().sum())
    frame["time_to_target_s"] = frame[field]
    why = {"normalised": "no reference convergence for their task profile and model, or a variant",
           "energy": "no readable energy counter on their machine, or older records"}.get(rule, "older records")
    runs = "runs" if rule == "normalised" else "reached runs"  # a missed run's time is inf under the other rules
    note = [f"{missing} {runs} have no {field} ({why}): no time-to-target from them under the {rule} rule"] \
        if missing else []
    return frame, note


def torch_versions(frame: pd.DataFrame) -> list[str]:
    """The torch versions in `frame`, oldest first ("2.11.0+cpu" < "2.14.1+cu130")."""
    def order(version: str) -> tuple:
        head = version.split("+")[0]
        return tuple(int(p) if p.isdigit() else 0 for p in head.split(".")) + (version,)
    return sorted({str(v) for v in frame.get("torch", pd.Series(dtype=str)).dropna()}, key=order)


def fit_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows `suite.results.check` finds fit for comparison (a `pool` frame has only those already)."""
    return frame[frame["fit"]] if "fit" in frame else frame


def _max_time(config: dict[str, Any]) -> float | None:
    """The run's train-time budget in seconds (`--max-time-s` over the recipe's), None where it has none."""
    value = config.get("max_time_s")
    value = value if value is not None else (config.get("budget") or {}).get("max_time_s")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _budget(config: dict[str, Any]) -> str:
    """The run's training budget in short ("max_steps=60, max_time_s=60"), command-line overrides applied."""
    budget = dict(config.get("budget") or {})
    for name in ("max_steps", "max_time_s"):
        if config.get(name) is not None:
            budget[name] = config[name]
    limits = ("max_steps", "max_epochs", "max_env_steps", "max_time_s")
    return ", ".join(f"{k}={budget[k]:g}" for k in limits if isinstance(budget.get(k), (int, float)))


def summarize(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One numeric row per cell (`keys`): runs, reached, and per measure its median, _lo, _hi, _spread and _n.

    _lo/_hi are the range (_spread "range") of 2-4 values, the 95% bootstrap interval (_spread "95% CI")
    of 5 or more (`suite.results.stats.spread`), NaN (_spread "") for fewer than two values.
    """
    frame = fit_only(frame)
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for key, group in frame.groupby(keys, dropna=False, sort=True):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(runs=len(group), reached=int(group["reached"].sum()), convergence=_convergence_note(group))
        units = sorted(set(group["throughput_unit"].dropna()))
        row["throughput_unit"] = units[0] if len(units) == 1 else ("mixed" if units else None)
        for measure in MEASURES:
            values = group[measure].dropna().to_numpy(dtype=float)
            if measure == "throughput" and len(units) > 1:
                values = values[:0]
            row.update(stats.cell_columns(measure, values))
            if measure == "time_to_target_s":  # the reached runs that have a time under the chosen rule
                row["time_to_target_s_reached"] = int((values < math.inf).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _convergence_note(group: pd.DataFrame) -> str:
    """How a cell's runs converged against their task's reference: runs whose steps to target fell outside
    the reference's 5th-95th percentile band, or that the cell has no reference convergence."""
    if not isinstance(group["target_metric"].iloc[0], str) or "convergence_inside" not in group:
        return ""
    if not group["has_reference"].any():
        return "no reference convergence"
    unusual = int((group["convergence_inside"] == False).sum())  # noqa: E712 - None: not reached, not unusual
    return f"{unusual}/{len(group)} converged unusually (outside the reference band)" if unusual else ""


def to_table(frame: pd.DataFrame, by: str = "model", measure: str = "time_to_target_s") -> pd.DataFrame:
    """Cells for people: "median [lo, hi] n=k". `measure` picks the cell of the wide (hardware/software) tables."""
    return to_tables(frame, by, [measure])[measure]


def to_tables(frame: pd.DataFrame, by: str, measures: list[str]) -> dict[str, pd.DataFrame]:
    """{measure: `to_table(frame, by, measure)`} from one summary of the cells (the by-model table holds
    every measure: each entry is that table)."""
    if by not in GROUPINGS:
        raise DlbenchError(f"compare: --by {by!r} is not one of {', '.join(GROUPINGS)}")
    if frame.empty:
        return {m: pd.DataFrame() for m in measures}
    layout = GROUPINGS[by]
    column = layout["columns"]
    if by == "software":  # an upgrade is compared on one machine: keep machines that ran several versions
        frame = frame[frame.groupby("hardware")["torch"].transform("nunique") > 1]
    summary = summarize(frame, COMPARABLE + layout["rows"] + ([column] if column else []))
    if summary.empty:
        return {m: summary for m in measures}
    shown = shown_keys(summary)
    rows = summary.to_dict("records")  # plain dicts: a pandas row per cell and measure costs more than the cell
    if column is None:
        table = shown[key_columns(shown) + layout["rows"]].copy()
        table["reached"] = [f"{r.reached}/{r.runs}" if isinstance(r.target_metric, str) else f"- ({r.runs} runs)"
                            for r in summary.itertuples()]
        for m in MEASURES:
            table[m] = [format_cell(row, m) for row in rows]
        if summary["convergence"].astype(bool).any():
            table["convergence"] = list(summary["convergence"])
        return {m: table for m in measures}
    shown[column] = summary[column].fillna("?").astype(str)
    index = key_columns(shown) + layout["rows"]
    tables = {}
    for measure in measures:
        shown["cell"] = [format_cell(row, measure) for row in rows]
        wide = shown.pivot_table(index=index, columns=column, values="cell", aggfunc="first", fill_value="-")
        wide.columns = [f"{column}={c}" if str(c) in index else str(c) for c in wide.columns]  # a label named "model"
        tables[measure] = wide.reset_index()
    return tables


def format_cell(row: dict[str, Any] | pd.Series, measure: str) -> str:
    """One cell of a summary row: "median CI [lo, hi] n=k" (5+ values), "median range [lo, hi] n=k"
    (2-4 values), "median n=1", or why there is no number."""
    n = int(row[f"{measure}_n"])
    if measure in ("time_to_target_s", "final_quality") and not isinstance(row.get("target_metric"), str):
        return "no target"  # the speed profile measures throughput, utilisation and memory only
    if measure == "time_to_target_s":
        if n == 0:  # train+eval rule over older records that lack the figure
            return "-"
        reached = int(row.get("time_to_target_s_reached", row["reached"]))
        if not math.isfinite(row[measure]):
            return f"not reached ({reached}/{n} reached)"
        missed = f", {n - reached} not reached" if reached < n else ""
        return f"{short_number(row[measure])}{_interval(row, measure)} n={n}{missed}"
    if n == 0:
        return "mixed units" if measure == "throughput" and row.get("throughput_unit") == "mixed" else "-"
    if measure == "utilisation":  # a share of the measured peak, shown as a percentage
        return f"{_percent(row[measure])}{_interval(row, measure, _percent)} n={n}"
    unit = f" {row['throughput_unit']}" if measure == "throughput" else ""
    return f"{short_number(row[measure])}{unit}{_interval(row, measure)} n={n}"


def _percent(share: float) -> str:
    """0.000583 -> "0.058%": three significant digits of a percentage."""
    return f"{share * 100:.3g}%"


def _interval(row: dict[str, Any] | pd.Series, measure: str, show=None) -> str:
    """" CI [lo, hi]" or " range [lo, hi]", named by how it was found, or "" for a single value."""
    show = show or short_number
    lo, hi = row[f"{measure}_lo"], row[f"{measure}_hi"]
    if math.isnan(lo):
        return ""
    name = "range" if row.get(f"{measure}_spread", stats.RANGE) == stats.RANGE else "CI"
    return f" {name} [{show(lo)}, {show(hi)}]"


def shown_keys(summary: pd.DataFrame) -> pd.DataFrame:
    """The comparable key as short columns: task, v, profile, dataset, target ("acc >= 0.9"), then each
    keyed setting (precision, compile, ...) that differs between the rows; the others are left out."""
    shown = summary.drop(columns=[c for c in summary.columns if c in COMPARABLE]).copy()
    varying = varying_settings(summary)
    for name in reversed(varying):
        shown.insert(0, name, summary[name].astype(str))
    shown.insert(0, "target", [f"{r.target_metric} {'>=' if r.higher_is_better else '<='} {r.target_value:g}"
                               if isinstance(r.target_metric, str) else "none (speed)"
                               for r in summary.itertuples()])
    for name, source in reversed(list(zip(["task", "v", "profile", "dataset"],
                                          ["task", "task_version", "profile", "dataset"]))):
        shown.insert(0, name, summary[source].astype(str))
    return shown


def varying_settings(summary: pd.DataFrame) -> list[str]:
    """The KEYED settings that take several values for one task and model (so a reader must see them)."""
    if summary.empty:
        return []
    where = [c for c in ("task", "task_version", "profile", "dataset", "target_metric", "target_value", "model")
             if c in summary]
    groups = summary.astype({k: str for k in KEYED if k in summary}).groupby(where, dropna=False, sort=False)
    return [k for k in KEYED if k in summary and (groups[k].nunique() > 1).any()]


def key_columns(shown: pd.DataFrame) -> list[str]:
    """The key columns `shown_keys` put into `shown`, in order."""
    return [c for c in _SHOWN_KEYS + KEYED if c in shown.columns]


def incomparable_notes(frame: pd.DataFrame) -> list[str]:
    """One line per task / model / profile whose runs fall into several comparable groups, naming what differs.

    Different profiles are different benchmarks (their own data, targets and settings): the table's
    profile column already says so, so only differences within one profile are worth a line.
    """
    if frame.empty:
        return []
    lines = []
    names = ["task", "model", "profile"]
    # Only the task / model / profile groups of several comparable keys need a line: found at once.
    distinct = frame[names].join(frame[COMPARABLE].astype(str).add_prefix("key:")).drop_duplicates()
    split = distinct.groupby(names, sort=False).size().loc[lambda n: n > 1].index
    several = frame.set_index(names).index.isin(split)
    for (task, model, profile), group in frame[several].groupby(names, sort=True):
        keys = group[COMPARABLE].astype(str).drop_duplicates()  # two or more: `split` holds only such groups
        differ = [c for c in COMPARABLE if keys[c].nunique() > 1]
        parts = []
        for column in differ:
            where = group.groupby(group[column].astype(str))["hardware"].agg(lambda s: ", ".join(sorted(set(s))))
            parts.append(f"{column} " + " vs ".join(f"{value} ({hw})" for value, hw in where.items()))
        lines.append(f"{task} / {model} ({profile}): {len(keys)} separate rows, not comparable: {'; '.join(parts)}")
    cells = frame.groupby(COMPARABLE + ["hardware", "model"], dropna=False, sort=True)
    mixed = cells["budget"].transform("nunique") > 1
    for key, group in frame[mixed].groupby(COMPARABLE + ["hardware", "model"], dropna=False, sort=True):
        budgets = sorted(set(group["budget"]))  # two or more: `mixed` holds only such cells
        lines.append(f"{key[0]} / {key[-1]} on {key[-2]}: one cell mixes budgets ({' | '.join(budgets)}); "
                     "a run with the smaller budget may miss the target for that reason")
    return lines
