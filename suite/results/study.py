"""Studies: variants of one model side by side (`dlbench sweep`, the report's "Studies" section).

Built only from records. A study is one comparable group of fit runs (task, version, profile,
dataset, target, machine, model, and every `suite.results.cells` KEYED setting but the variant itself)
that carry `--set` overrides (`config.overrides`). A key is *varied* when the runs that set it
give it two or more values. One row per variant (one set of override values):
  quality          the test metric (`compare.quality_metric`) where the run stopped; trained to the
                   budget (`--train-to-budget`), at its best validation point: the median over seeds,
                   with its 95% bootstrap interval ("CI", 5 or more seeds) or its range ("range", 2-4)
  best val         trained to the budget: the best validation value of the target metric, so a study
                   shows what a knob buys in quality at a fixed budget, not only in time
  time to target   train time until the target was met; a miss counts as `inf` (suite.results.stats), so
                   the median is "not reached" unless more than half the seeds reached it;
                   `reached` is how many seeds of how many did
  params, FLOPs per sample   of the variant's model (the same for every seed: the first run's)
  throughput       samples/s (the record's unit), median over seeds
  others' CPU      the largest `host.other_cpu_share` among the seeds: how busy the machine was
Default-recipe runs (no override) belong to no study: they are the model's row in every other table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import pandas as pd

from suite.results import cells, compare, stats
from suite.results.numbers import number, short_number

GROUP = ["task", "task_version", "profile", "dataset", "target_metric", "target_value", "higher_is_better",
         "hardware", "model"] + cells.SETTINGS_BUT_VARIANT
MEASURES = ["quality", "best_val", "time_to_target_s", "throughput"]


@dataclass
class Study:
    """One group's runs (`runs`: one row per run, an `ov:KEY` column per override) and its varied keys."""

    key: dict[str, Any]
    varied: list[str]
    runs: pd.DataFrame
    order: dict[str, list[str]] | None = None  # {key: values in the order a sweep gave them}; else numbers, then text

    @property
    def title(self) -> str:
        k = self.key
        return f"{k['task']} / {k['model']} ({k['profile']}, {k['hardware']})"


def runs_frame(recs: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per fit run with overrides: compare.to_frame's columns, `quality`, params, FLOPs and an
    `ov:KEY` text column per override key ("" where the run does not set it)."""
    recs = list(recs)
    frame = compare.to_frame(recs)
    if frame.empty:
        return frame
    by_id = {r["run_id"]: r for r in recs}
    frame = frame[frame["fit"] & frame["target_metric"].notna()].copy()
    overrides = [_overrides(by_id[run_id]) for run_id in frame["run_id"]]
    # a boolean mask, also when no run is left: `frame[[]]` would select no columns instead of no rows
    keep = pd.Series([bool(o) for o in overrides], index=frame.index, dtype=bool)
    frame, overrides = frame[keep].copy(), [o for o in overrides if o]
    for column in ("params", "flops_per_sample"):
        frame[column] = [number(by_id[run_id].get(column)) for run_id in frame["run_id"]]
    frame["other_cpu_share"] = [number((by_id[run_id].get("host") or {}).get("other_cpu_share"))
                                for run_id in frame["run_id"]]
    best = [by_id[run_id].get("best") or {} for run_id in frame["run_id"]]
    metrics = [compare.quality_metric(m) for m in frame["target_metric"]]
    frame["best_val"] = [number((b.get("metrics") or {}).get(m)) for b, m in zip(best, frame["target_metric"])]
    best_test = [number((b.get("metrics") or {}).get(q)) for b, q in zip(best, metrics)]
    frame["quality"] = [t if not math.isnan(t) else f for t, f in zip(best_test, frame["final_quality"])]
    for key in sorted({k for o in overrides for k in o}):
        frame[f"ov:{key}"] = [o.get(key, "") for o in overrides]
    return frame.reset_index(drop=True)


def studies(recs: Iterable[dict[str, Any]], keys: Sequence[str] | None = None,
            order: dict[str, list[str]] | None = None) -> list[Study]:
    """The studies in `recs`; with `keys` (a sweep's varied keys) those keys are the varied ones, their
    values in `order` ({key: values as given}) where given."""
    recs = list(recs)
    if not any(_overrides(r) for r in recs):  # no run carries an override: no study, and no frame to build
        return []
    frame = runs_frame(recs)
    found = []
    if frame.empty:
        return found
    for key, group in frame.groupby(GROUP, dropna=False, sort=True):
        group = group.drop(columns=[c for c in group if c.startswith("ov:") and (group[c] == "").all()])
        columns = [c for c in group if c.startswith("ov:")]
        varied = [c[3:] for c in columns if group.loc[group[c] != "", c].nunique() > 1]
        if keys is not None:
            varied = [k for k in keys if f"ov:{k}" in group]
        if varied:
            found.append(Study(dict(zip(GROUP, key)), varied, group, order))
    return found


def variant_columns(study: Study) -> list[str]:
    return sorted(c for c in study.runs if c.startswith("ov:"))


def summarize(study: Study) -> pd.DataFrame:
    """One numeric row per variant: the override values, runs, reached, and per measure median, _lo, _hi,
    _spread ("range" for 2-4 seeds, "95% CI" from 5, `suite.results.stats.spread`) and _n."""
    columns = variant_columns(study)
    rows = []
    for values, runs in study.runs.groupby(columns, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        row = {c[3:]: v for c, v in zip(columns, values)}
        times = runs["time_to_target_s"].to_numpy(dtype=float)
        row.update(runs=len(runs), reached=int((times < math.inf).sum()),
                   params=runs["params"].iloc[0], flops_per_sample=runs["flops_per_sample"].iloc[0],
                   other_cpu_share=runs["other_cpu_share"].max())
        for measure in MEASURES:
            values_ = runs[measure].dropna().to_numpy(dtype=float)
            row.update(stats.cell_columns(measure, values_))
        rows.append(row)
    summary = pd.DataFrame(rows)
    order = [k for k in study.varied] + [c[3:] for c in columns if c[3:] not in study.varied]
    given = study.order or {}
    return summary.sort_values(by=order, key=lambda col: col.map(lambda v: _sort_key(v, given.get(col.name)))) \
        .reset_index(drop=True)


def to_table(summary: pd.DataFrame, study: Study) -> pd.DataFrame:
    """For people: the override values, then "median CI [lo, hi]" or "median range [lo, hi]" cells,
    `reached` as r/n."""
    keys = [c[3:] for c in variant_columns(study)]
    unit = study.runs["throughput_unit"].dropna()
    rows = []
    for _, s in summary.iterrows():
        row = {k: s[k] or "-" for k in keys}
        row["quality"] = _cell(s, "quality")
        if s["best_val_n"]:
            row["best val"] = _cell(s, "best_val")
        row["time to target s"] = ("not reached" if s["time_to_target_s"] == math.inf and s["time_to_target_s_n"]
                                   else _cell(s, "time_to_target_s"))
        row["reached"] = f"{int(s['reached'])}/{int(s['runs'])}"
        row["params"] = short_number(s["params"], inf='inf')
        row["FLOPs/sample"] = short_number(s["flops_per_sample"], inf='inf')
        row[f"throughput {unit.iloc[0] if len(unit) else ''}".strip()] = _cell(s, "throughput")
        share = s["other_cpu_share"]
        row["others' CPU (max)"] = "-" if math.isnan(share) else f"{share:.0%}"
        rows.append(row)
    return pd.DataFrame(rows)


def caption(study: Study) -> str:
    k = study.key
    sign = ">=" if k["higher_is_better"] else "<="
    return (f"{study.title}: target {k['target_metric']} {sign} {k['target_value']:g}; varied "
            f"{', '.join(study.varied)}; each cell: the median over seeds, with its 95% bootstrap interval "
            f"(CI, {stats.MIN_FOR_CI}+ seeds) or its range (range, fewer seeds)")


def plot_points(study: Study, key: str) -> list[tuple[str, pd.DataFrame]]:
    """For the plot of `key`: (series label, summary rows of the runs that set `key`) per combination of the
    other override values ("" when none), each sorted by the value of `key`."""
    summary = summarize(study)
    summary = summary[summary[key] != ""]
    others = [c[3:] for c in variant_columns(study) if c[3:] != key]
    if not others:
        return [("", summary)]
    series = []
    for values, part in summary.groupby(others, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{k}={v}" for k, v in zip(others, values) if v)
        series.append((label, part))
    return series


def plot(found: Study, key: str) -> bytes:
    """The PNG of `key`'s plot (suite.reporting.plots.study)."""
    from suite.reporting import plots  # matplotlib only where a plot is drawn

    return plots.study(plot_points(found, key), key, found.key["target_metric"], float(found.key["target_value"]),
                       found.title)


def _overrides(record: dict[str, Any]) -> dict[str, str]:
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    overrides = config.get("overrides") if isinstance(config.get("overrides"), dict) else {}
    return {str(k): cells.value_text(v) for k, v in overrides.items() if k != "task.pretrained"}


def _sort_key(value: Any, given: list[str] | None = None):
    """In the order `given` when the value is there; else numbers by value before text; "" (not set) last."""
    if given and value in given:
        return (-1, float(given.index(value)), "")
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1 if value != "" else 2, 0.0, str(value))


def _cell(row: pd.Series, measure: str) -> str:
    if not row[f"{measure}_n"]:
        return "-"
    lo, hi = row[f"{measure}_lo"], row[f"{measure}_hi"]
    name = "range" if row.get(f"{measure}_spread") == stats.RANGE else "CI"
    interval = "" if math.isnan(lo) else f" {name} [{short_number(lo, inf='inf')}, {short_number(hi, inf='inf')}]"
    return f"{short_number(row[measure], inf='inf')}{interval}"
