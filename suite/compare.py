"""Records -> comparison tables (pandas), built only from records.

`to_frame` flattens records into one row per run; `to_table` groups runs
that are comparable (same task, task version, profile, dataset and target)
by model or by hardware and takes the median over seeds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pandas as pd

COMPARABLE = ["task", "task_version", "profile", "dataset", "target_metric", "target_value"]
GROUPINGS = {
    "model": COMPARABLE + ["model", "hardware"],
    "hardware": COMPARABLE + ["model", "hardware"],
}


def to_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run, with flat columns (duplicate run_ids count once)."""
    rows = []
    seen: set[str] = set()
    for r in records:
        if r["run_id"] in seen:
            continue
        seen.add(r["run_id"])
        target = r.get("target") or {}
        metric = target.get("metric")
        throughput = r.get("throughput") or {}
        rows.append({
            "run_id": r["run_id"],
            "task": r["task"],
            "task_version": r["task_version"],
            "profile": r["profile"],
            "dataset": r.get("dataset"),
            "model": r["model"],
            "seed": r["seed"],
            "status": r["status"],
            "hardware": (r.get("hardware") or {}).get("label", "?"),
            "torch": (r.get("software") or {}).get("torch"),
            "target_metric": metric,
            "target_value": target.get("value"),
            "reached": bool(r.get("reached_target")),
            "time_to_target_s": r.get("time_to_target_s"),
            "train_time_s": r.get("train_time_s"),
            "final_quality": (r.get("final_metrics") or {}).get(metric) if metric else None,
            "throughput": throughput.get("value"),
            "throughput_unit": throughput.get("unit"),
            "peak_mem_mb": r.get("peak_mem_mb"),
            "error": r.get("error"),
        })
    return pd.DataFrame(rows)


def to_table(frame: pd.DataFrame, by: str = "model") -> pd.DataFrame:
    """Median over seeds per comparable group; `by="hardware"` puts machines side by side."""
    if frame.empty:
        return frame
    ran = frame[frame["status"].isin(["ok", "diverged"])]
    if ran.empty:
        return pd.DataFrame()
    keys = GROUPINGS[by]
    grouped = ran.groupby(keys, dropna=False, sort=True)
    table = grouped.agg(
        n=("seed", "size"),
        reached=("reached", "sum"),
        time_to_target_s=("time_to_target_s", "median"),
        final_quality=("final_quality", "median"),
        throughput=("throughput", "median"),
        throughput_unit=("throughput_unit", "first"),
        peak_mem_mb=("peak_mem_mb", "median"),
        train_time_s=("train_time_s", "median"),
    ).reset_index()
    table["reached"] = table["reached"].astype(int).astype(str) + "/" + table["n"].astype(str)
    if by == "hardware":
        wide = table.pivot_table(index=COMPARABLE + ["model"], columns="hardware",
                                 values=["time_to_target_s", "final_quality", "throughput"], aggfunc="first")
        wide.columns = [f"{metric} [{hw}]" for metric, hw in wide.columns]
        return wide.reset_index()
    return table


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    if table.empty:
        return "(no comparable runs)"
    cols = list(table.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_tables(table: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """Write `table` as CSV and Markdown into out_dir; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    table.to_csv(csv, index=False)
    md.write_text(to_markdown(table) + "\n")
    return [csv, md]
