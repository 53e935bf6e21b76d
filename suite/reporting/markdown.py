"""Tables as GitHub-flavoured Markdown (no extra dependency) and as CSV + Markdown files, written atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from suite.results import safetext
from suite.results.safe_io import atomic_write_csv, atomic_write_text


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    if table.empty:
        return "(no comparable runs)"
    cols = list(table.columns)
    lines = ["| " + " | ".join(_md_text(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_md_text(_cell(row[c])) for c in cols) + " |")
    return "\n".join(lines)


def _md_text(value: Any) -> str:
    """Text from a record in a Markdown cell: one line, no raw HTML, `|` escaped (suite.results.safetext)."""
    return safetext.markdown(value)


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
    atomic_write_csv(table, csv)
    atomic_write_text(md, to_markdown(table) + "\n")
    return [csv, md]
