"""Deep against hand-crafted: per task, the best deep model beside the best model without learned features.

Built only from records (their `family`, `suite.models`). Two sides:
  deep          family "deep"
  hand-crafted  families "hand-crafted" and "shallow" (fixed features, at most one trained layer)
A record without `family` (written before families existed) is deep.

Per cell (task, version, profile, dataset, target, machine, and the `suite.cells` KEYED
settings but the variant: precision, compile, world size, pretrained weights, dataset content)
and side, the best model is the one with the best median quality over seeds (the target metric,
in its direction). A model's variants (`--set`, `config.overrides`) are candidates of their own,
named "mlp [model.depth=4]", never pooled with the model as declared; the best one's row shows,
as "median CI [lo, hi] n=seeds" (a 95% interval, 5 or more seeds) or "median range [lo, hi] n=seeds":
  quality        the target metric (in domain)
  out of domain  the same metric averaged over the run's `ood_*` eval splits, where the task has them
  time to target train time until the target was met; a run that missed it counts as
                 infinitely slow (`suite.stats`), so the median may be "not reached"
  train time     the whole training (for a fitted model: the fit; for a rule: 0)
Runs that `suite.check` finds unfit (failed, skipped...) are left out, as in every table.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import pandas as pd

from suite import cells, check, records, stats

SIDES = {"deep": ("deep",), "hand-crafted": ("hand-crafted", "shallow")}
SETTINGS = cells.SETTINGS_BUT_VARIANT  # a variant is a candidate within a cell, not a cell
KEYS = ["task", "task_version", "profile", "dataset", "target", "hardware"] + SETTINGS
MEASURES = ["quality", "ood", "time_to_target_s", "train_time_s"]
HEADERS = {"quality": "quality", "ood": "out of domain", "time_to_target_s": "time to target s",
           "train_time_s": "train time s"}


def runs_frame(recs: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per fit run: keys, model, family, side, seed, higher_is_better and the four measures.

    quality is NaN for a run without the target metric (diverged); ood is NaN where the task has
    no `ood_*` split; time_to_target_s is `inf` for a run that missed the target. A run without a
    target (the `speed` profile) has no quality to set side by side and is left out.
    """
    recs = list(recs)
    rows, seen = [], set(check.reruns(recs))  # a run done again counts once, as its newest record
    for r in recs:
        if r.get("run_id") in seen or not check.is_fit(r) or not r.get("target"):
            continue
        seen.add(r["run_id"])
        target = r["target"]
        metric = target["metric"]
        name = metric.split("/", 1)[-1]
        final = (r.get("final_metrics") or {}) if r["status"] == "ok" else {}
        ood = [v for k, v in final.items() if k.startswith("ood_") and k.split("/", 1)[-1] == name]
        family = r.get("family") or "deep"
        reached = records.reached(r)
        settings = cells.cell_settings(r)
        variant = settings.pop("variant")
        rows.append({
            "task": r["task"], "task_version": r["task_version"], "profile": r["profile"],
            "dataset": r.get("dataset"), "target": _target_text(target),
            "hardware": (r.get("hardware") or {}).get("label"), **settings,
            "model": r["model"] if variant == cells.UNKNOWN else f"{r['model']} [{variant}]", "family": family,
            "side": side_of(family), "seed": r["seed"], "higher_is_better": bool(target["higher_is_better"]),
            "quality": _number(final.get(metric)), "ood": sum(ood) / len(ood) if ood else math.nan,
            "ood_splits": ", ".join(sorted(k.split("/", 1)[0] for k in final if k.startswith("ood_")
                                           and k.split("/", 1)[-1] == name)),
            "time_to_target_s": float(r["time_to_target_s"]) if reached else math.inf,
            "train_time_s": _number(r.get("train_time_s")),
        })
    return pd.DataFrame(rows)


def side_of(family: str) -> str:
    return next((side for side, families in SIDES.items() if family in families), "deep")


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One numeric row per cell and side (its best model): median, _lo, _hi, _n per measure."""
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for key, cell in frame.groupby(KEYS, dropna=False, sort=True):
        for side in SIDES:
            runs = cell[cell["side"] == side]
            if runs.empty:
                continue
            best = _best_model(runs)
            chosen = runs[runs["model"] == best]
            row = dict(zip(KEYS, key), side=side, model=best, family=chosen["family"].iloc[0],
                       runs=len(chosen), reached=int((chosen["time_to_target_s"] < math.inf).sum()),
                       ood_splits=chosen["ood_splits"].iloc[0])
            for measure in MEASURES:
                values = chosen[measure].dropna().to_numpy(dtype=float)
                spread = stats.spread(values) or (math.nan, math.nan, "")
                row.update({measure: stats.median(values), f"{measure}_lo": spread[0], f"{measure}_hi": spread[1],
                            f"{measure}_spread": spread[2], f"{measure}_n": len(values)})
            rows.append(row)
    return pd.DataFrame(rows)


def _best_model(runs: pd.DataFrame) -> str:
    """The model with the best median quality (ties and all-NaN: the faster median time to target, then name)."""
    higher = bool(runs["higher_is_better"].iloc[0])
    scored = []
    for model, group in runs.groupby("model", sort=True):
        quality = stats.median(group["quality"].dropna().to_numpy(dtype=float))
        quality = -math.inf if math.isnan(quality) else (quality if higher else -quality)
        scored.append((-quality, stats.median(group["time_to_target_s"].to_numpy(dtype=float)), model))
    return min(scored)[2]


def to_table(summary: pd.DataFrame) -> pd.DataFrame:
    """For people: one row per cell, the deep side's best model and the hand-crafted side's side by side."""
    if summary.empty:
        return pd.DataFrame()
    rows = []
    for key, cell in summary.groupby(KEYS, dropna=False, sort=True):
        row = {k: v for k, v in zip(KEYS, key) if k in ("task", "profile", "target")}
        for side in SIDES:
            part = cell[cell["side"] == side]
            if part.empty:
                row[f"{side} model"] = "-"
                row.update({f"{side} {HEADERS[m]}": "-" for m in MEASURES})
                continue
            s = part.iloc[0]
            row[f"{side} model"] = s["model"] if side == "deep" else f"{s['model']} ({s['family']})"
            row.update({f"{side} {HEADERS[m]}": format_cell(s, m) for m in MEASURES})
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.drop(columns=[c for c in table if c.endswith(HEADERS["ood"]) and (table[c] == "-").all()])


def format_cell(row: pd.Series, measure: str) -> str:
    """"median CI [lo, hi] n=k" or "median range [lo, hi] n=k"; "-" without values; time to target:
    "not reached (r/n reached)" when so."""
    n = int(row[f"{measure}_n"])
    if n == 0:
        return "-"
    value = row[measure]
    if measure == "time_to_target_s" and value == math.inf:
        return f"not reached ({int(row['reached'])}/{n} reached)"
    lo, hi = row[f"{measure}_lo"], row[f"{measure}_hi"]
    name = "range" if row.get(f"{measure}_spread") == stats.RANGE else "CI"
    interval = "" if math.isnan(lo) else f" {name} [{_num(lo)}, {_num(hi)}]"
    return f"{_num(value)}{interval} n={n}"


def notes(summary: pd.DataFrame) -> list[str]:
    """Lines under the table: what the columns are, which out-of-domain splits were averaged."""
    lines = [f"Best model of each side by median quality (the target metric). Each cell: median "
             f"and 'CI [lo, hi]' ({stats.METHOD}; {stats.MIN_FOR_CI}+ seeds) or 'range [lo, hi]' (2-4 seeds) "
             "n=seeds. Hand-crafted side: families hand-crafted and shallow "
             "(fixed features, at most one trained layer). A fitted model's train time is its fit; a rule's is 0."]
    if not summary.empty:
        for task, splits in sorted({(r.task, r.ood_splits) for r in summary.itertuples() if r.ood_splits}):
            lines.append(f"{task}: out of domain = mean of {splits}")
    return lines


def ood_leaders(frame: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """A line per cell and side whose best model out of domain is not its best in domain."""
    lines = []
    for row in summary.itertuples():
        runs = frame[(frame["side"] == row.side) & (frame["ood"].notna())]
        for key in KEYS:
            runs = runs[runs[key] == getattr(row, key)]
        if runs.empty:
            continue
        higher = bool(runs["higher_is_better"].iloc[0])
        medians = {model: stats.median(g["ood"].to_numpy(dtype=float)) for model, g in runs.groupby("model")}
        leader = (max if higher else min)(sorted(medians), key=medians.get)
        if leader != row.model:
            lines.append(f"{row.task}, {row.side} side: best out of domain is {leader} ({_num(medians[leader])}, "
                         f"against {_num(medians[row.model])} for {row.model})")
    return lines


def tables(recs: Sequence[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(table for people, numeric summary, notes) of the deep-against-hand-crafted view."""
    frame = runs_frame(recs)
    summary = summarize(frame)
    return to_table(summary), summary, notes(summary) + (ood_leaders(frame, summary) if not summary.empty else [])


def has_both_sides(recs: Sequence[dict[str, Any]]) -> bool:
    """True when some fit run is deep and some is not (the view has something to set side by side)."""
    sides = {side_of(r.get("family") or "deep") for r in recs if check.is_fit(r)}
    return len(sides) > 1


def _target_text(target: dict[str, Any]) -> str:
    sign = ">=" if target["higher_is_better"] else "<="
    return f"{target['metric']} {sign} {target['value']:g}"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
