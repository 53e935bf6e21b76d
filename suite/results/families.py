"""Deep against hand-crafted: per task, the best deep model beside the best model without learned features.

Built only from records (their `family`, `suite.taskapi.models`). Two sides:
  deep          family "deep"
  hand-crafted  families "hand-crafted" and "shallow" (fixed features, at most one trained layer)
A record without `family` (written before families existed) is deep.

Per cell (task, version, profile, dataset, target, machine, and the `suite.results.cells` KEYED
settings but the variant, the pretrained encoder and the precision: compile, world size, dataset content)
and side, the best model is the one with the best median quality over seeds (the target metric,
in its direction). A model's variants (`--set`, `config.overrides`) are candidates of their own,
named "mlp [model.depth=4]", never pooled with the model as declared, and so is a model fine-tuned
from a pretrained encoder, named with it ("minilm_finetune (name@hash)"), and so is a model run in another
precision than fp32, named with it ("minilm_finetune in bf16"): `--precision auto` picks bf16 per recipe,
and a fitted model always runs in fp32 on the host, so precision as a cell key would keep the two sides of
a task apart. The best one's row shows,
as "median CI [lo, hi] n=seeds" (a 95% interval, 5 or more seeds) or "median range [lo, hi] n=seeds":
  quality        the target's metric on the test split (in domain; runs stop on validation)
  time to target train time until the target was met; a run that missed it counts as
                 infinitely slow (`suite.results.stats`), so the median may be "not reached"
  train time     the whole training (for a fitted model: the fit; for a rule: 0)
A second view, in domain and held out (`held_out_tables`), has a row per cell and evaluation set:
the target's split (in domain) and every held-out set the runs report the target's metric on
(eval splits other than train / val / test / eval: `ood_*`, `real_*`), with each side's best
model on that set (by its median there) beside the other side's. A held-out set a run skipped
(its synthesiser or package missing: `data_info[split]["skipped"]`) is counted in a note.
Runs that `suite.results.check` finds unfit (failed, skipped...) are left out, as in every table.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import pandas as pd

from suite.results import cells, check, records, stats
from suite.results.compare import quality_metric
from suite.results.numbers import number, short_number

SIDES = {"deep": ("deep",), "hand-crafted": ("hand-crafted", "shallow")}
# A variant is a candidate within a cell, not a cell; so is a pretrained encoder: it belongs to the model that
# fine-tunes it (a hand-crafted model has none), and a model fine-tuned from another one is another candidate;
# so is the precision that ran (a fitted model's is always fp32, a deep one's bf16 where its recipe wins by it).
SETTINGS = [k for k in cells.SETTINGS_BUT_VARIANT if k not in ("pretrained", "precision")]
PLAIN_PRECISIONS = ("fp32", cells.UNKNOWN)  # a candidate in any other precision is named with it
KEYS = ["task", "task_version", "profile", "dataset", "target", "hardware"] + SETTINGS
MEASURES = ["quality", "time_to_target_s", "train_time_s"]
HEADERS = {"quality": "quality", "time_to_target_s": "time to target s", "train_time_s": "train time s"}
IN_DOMAIN_SPLITS = ("train", "val", "test", "eval")  # every other eval split is a held-out set


def runs_frame(recs: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per fit run: keys, model, family, side, seed, higher_is_better, the three measures, and
    `held_out`: {set: value of the target's metric} over the run's held-out sets (`held_out_values`).

    quality is NaN for a run without the target metric (diverged); time_to_target_s is `inf` for a
    run that missed the target. A run without a target (the `speed` profile) has no quality to set
    side by side and is left out.
    """
    recs = list(recs)
    # a run done again counts once, as its newest record; one run_id with different contents not at all
    rows, seen = [], set(check.reruns(recs)) | check.conflicting_ids(recs)
    for r in recs:
        if r.get("run_id") in seen or not check.is_fit(r) or not r.get("target"):
            continue
        seen.add(r["run_id"])
        target = r["target"]
        metric = target["metric"]
        final = (r.get("final_metrics") or {}) if r["status"] == "ok" else {}
        family = r.get("family") or "deep"
        reached = records.reached(r)
        settings = cells.cell_settings(r)
        variant, pretrained, precision = settings.pop("variant"), settings.pop("pretrained"), settings.pop("precision")
        model = r["model"] if variant == cells.UNKNOWN else f"{r['model']} [{variant}]"
        model = model if pretrained == cells.UNKNOWN else f"{model} ({pretrained})"
        model = model if precision in PLAIN_PRECISIONS else f"{model} in {precision}"
        rows.append({
            "task": r["task"], "task_version": r["task_version"], "profile": r["profile"],
            "dataset": r.get("dataset"), "target": _target_text(target),
            "hardware": (r.get("hardware") or {}).get("label"), **settings,
            "model": model, "family": family,
            "side": side_of(family), "seed": r["seed"], "higher_is_better": bool(target["higher_is_better"]),
            "quality": number(final.get(quality_metric(metric))),
            "time_to_target_s": float(r["time_to_target_s"]) if reached else math.inf,
            "train_time_s": number(r.get("train_time_s")), "held_out": held_out_values(final, metric),
            "skipped": sorted(k for k, v in (r.get("data_info") or {}).items()
                              if isinstance(v, dict) and "skipped" in v),
            "recency": check.recency(r),
        })
    return _one_run_per_seed(pd.DataFrame(rows))


def _one_run_per_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """The newest run of each model and seed in a cell. The view pools a model's configurations (a recipe
    changed between commits, another time cap), so one seed can be there twice; it counts once. The
    frame's `attrs["repeated_seeds"]` says how many runs were left out."""
    if frame.empty:
        return frame
    ordered = frame.sort_values("recency", kind="stable")
    kept = ordered.drop_duplicates(KEYS + ["model", "seed"], keep="last").sort_index()
    kept = kept.drop(columns="recency")
    kept.attrs["repeated_seeds"] = len(frame) - len(kept)
    return kept


def repeated_notes(frame: pd.DataFrame) -> list[str]:
    """A line when runs of a model and seed already counted (under another configuration) were left out."""
    n = frame.attrs.get("repeated_seeds", 0)
    return [f"{n} run(s) of a model and seed already counted in their cell under another configuration left "
            "out: each seed counts once, as its newest run"] if n else []


def held_out_values(final: dict[str, Any], metric: str) -> dict[str, float]:
    """{held-out set: value} of the target's metric name (`test/wer` -> `*/wer`) in a run's final metrics."""
    name = metric.split("/", 1)[-1]
    out = {}
    for key, value in final.items():
        split, _, measured = key.partition("/")
        if measured == name and split not in IN_DOMAIN_SPLITS and not math.isnan(number(value)):
            out[split] = float(value)
    return out


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
                       runs=len(chosen), reached=int((chosen["time_to_target_s"] < math.inf).sum()))
            for measure in MEASURES:
                values = chosen[measure].dropna().to_numpy(dtype=float)
                row.update(stats.cell_columns(measure, values))
            rows.append(row)
    return pd.DataFrame(rows)


def _best_model(runs: pd.DataFrame, measure: str = "quality") -> str:
    """The model with the best median `measure` (ties and all-NaN: the faster median time to target, then name)."""
    higher = bool(runs["higher_is_better"].iloc[0])
    scored = []
    for model, group in runs.groupby("model", sort=True):
        quality = stats.median(group[measure].dropna().to_numpy(dtype=float))
        quality = -math.inf if math.isnan(quality) else (quality if higher else -quality)
        scored.append((-quality, stats.median(group["time_to_target_s"].to_numpy(dtype=float)), model))
    return min(scored)[2]


def to_table(summary: pd.DataFrame) -> pd.DataFrame:
    """For people: one row per cell, the deep side's best model and the hand-crafted side's side by side."""
    if summary.empty:
        return pd.DataFrame()
    rows, shown = [], ("task", "profile", "target", *varying(summary))
    for key, cell in summary.groupby(KEYS, dropna=False, sort=True):
        row = {k: v for k, v in zip(KEYS, key) if k in shown}
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
    return pd.DataFrame(rows)


def varying(summary: pd.DataFrame) -> list[str]:
    """The keyed settings that tell apart two cells of one task and profile (e.g. `data`: the content
    fingerprint, which differs for a corpus built from other training voices): shown as columns."""
    groups = summary.groupby(["task", "profile"], dropna=False)
    return [k for k in ["hardware"] + SETTINGS if (groups[k].nunique(dropna=False) > 1).any()]


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
    interval = "" if math.isnan(lo) else f" {name} [{short_number(lo)}, {short_number(hi)}]"
    return f"{short_number(value)}{interval} n={n}"


def notes(summary: pd.DataFrame) -> list[str]:
    """The line under the table: what the columns are."""
    return [f"Best model of each side by median quality (the target metric). Each cell: median "
            f"and 'CI [lo, hi]' ({stats.METHOD}; {stats.MIN_FOR_CI}+ seeds) or 'range [lo, hi]' (2-4 seeds) n=seeds. Hand-crafted side: families hand-crafted and shallow "
            "(fixed features, at most one trained layer). A fitted model's train time is its fit; a rule's is 0."]


def tables(recs: Sequence[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(table for people, numeric summary, notes) of the deep-against-hand-crafted view, in domain."""
    frame = runs_frame(recs)
    summary = summarize(frame)
    return to_table(summary), summary, notes(summary) + repeated_notes(frame)


# -- in domain and on each held-out set ------------------------------------------------------------------------
def sets_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`runs_frame` long: one row per run and evaluation set (`set`; the target's split first, `in_domain`)
    with that set's `value` of the target's metric."""
    rows = []
    for run in frame.to_dict("records"):
        base = {k: run[k] for k in KEYS + ["model", "family", "side", "seed", "higher_is_better", "time_to_target_s"]}
        rows.append({**base, "set": quality_metric(run["target"]).split("/", 1)[0], "in_domain": True,
                     "value": run["quality"]})
        rows += [{**base, "set": split, "in_domain": False, "value": value} for split, value in run["held_out"].items()]
    return pd.DataFrame(rows)


def summarize_sets(frame: pd.DataFrame) -> pd.DataFrame:
    """One numeric row per cell, evaluation set and side: that side's best model on the set (value median,
    _lo, _hi, _n); in domain the best is the one `summarize` picks."""
    long = sets_frame(frame) if not frame.empty else pd.DataFrame()
    if long.empty:
        return pd.DataFrame()
    rows = []
    for key, cell in long.groupby(KEYS + ["in_domain", "set"], dropna=False, sort=True):
        for side in SIDES:
            runs = cell[(cell["side"] == side) & cell["value"].notna()]
            if runs.empty:
                continue
            best = _best_model(runs, "value")
            values = runs.loc[runs["model"] == best, "value"].to_numpy(dtype=float)
            spread = stats.spread(values) or (math.nan, math.nan, "")
            rows.append({**dict(zip(KEYS + ["in_domain", "set"], key)), "side": side, "model": best,
                         "family": runs.loc[runs["model"] == best, "family"].iloc[0], "value": stats.median(values),
                         "value_lo": spread[0], "value_hi": spread[1], "value_spread": spread[2],
                         "value_n": len(values)})
    out = pd.DataFrame(rows)
    # In domain first, then the held-out sets by name.
    return out.sort_values(KEYS + ["in_domain", "set"], ascending=[True] * len(KEYS) + [False, True],
                           kind="stable").reset_index(drop=True)


def to_sets_table(summary: pd.DataFrame) -> pd.DataFrame:
    """For people: a row per cell and evaluation set, each side's best model there and its value."""
    if summary.empty:
        return pd.DataFrame()
    rows, shown = [], varying(summary)
    for key, cell in summary.groupby(KEYS + ["in_domain", "set"], dropna=False, sort=False):
        parts = dict(zip(KEYS + ["in_domain", "set"], key))
        row = {"task": parts["task"], "profile": parts["profile"], **{k: parts[k] for k in shown},
               "set": f"{parts['set']} (in domain)" if parts["in_domain"] else parts["set"]}
        for side in SIDES:
            part = cell[cell["side"] == side]
            if part.empty:
                row[f"{side} model"], row[side] = "-", "-"
                continue
            s = part.iloc[0]
            row[f"{side} model"] = s["model"] if side == "deep" else f"{s['model']} ({s['family']})"
            row[side] = _value_cell(s)
        rows.append(row)
    return pd.DataFrame(rows)


def skipped_notes(frame: pd.DataFrame) -> list[str]:
    """A line per task and held-out set that some runs skipped (their machine could not build it)."""
    if frame.empty:
        return []
    counts: dict[tuple[str, str], int] = {}
    for task, skipped in zip(frame["task"], frame["skipped"]):
        for split in skipped:
            counts[(task, split)] = counts.get((task, split), 0) + 1
    return [f"{task}: {split} skipped in {n} of {int((frame['task'] == task).sum())} runs (see the records' "
            f"data_info for the install line)" for (task, split), n in sorted(counts.items())]


def held_out_tables(recs: Sequence[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(table for people, numeric summary, notes): each side's best model in domain and on each held-out set."""
    frame = runs_frame(recs)
    summary = summarize_sets(frame)
    lines = [f"Each set's best model of each side by its median there (the target's metric); each cell: median and "
             f"'CI [lo, hi]' ({stats.METHOD}; {stats.MIN_FOR_CI}+ seeds) or 'range [lo, hi]' (2-4 seeds) n=seeds. "
             "In domain: the test split (runs stop on validation). Held out: sets no "
             "training data came from (other voices, real recordings, other labelling studies)."]
    return to_sets_table(summary), summary, lines + skipped_notes(frame)


def _value_cell(row: pd.Series) -> str:
    return format_cell(row, "value")


def has_both_sides(recs: Sequence[dict[str, Any]]) -> bool:
    """True when some fit run is deep and some is not (the view has something to set side by side)."""
    sides = {side_of(r.get("family") or "deep") for r in recs if check.is_fit(r)}
    return len(sides) > 1


def _target_text(target: dict[str, Any]) -> str:
    sign = ">=" if target["higher_is_better"] else "<="
    return f"{target['metric']} {sign} {target['value']:g}"
