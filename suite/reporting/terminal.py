"""Tables for an 80-100 column terminal: constant columns lifted into a header line, a one-line legend.

The wide tables (every key column, every measure) stay in the files that
`compare --out`, `report` and `run_all.py` write; the terminal gets a
narrow view of the same cells. Columns that hold one value in every row
become a "where:" line; when the rest is still wider than `width`, the
lowest-priority columns (memory, throughput, quality) are left out and a
line names them and where to find them.
"""
from __future__ import annotations

import sys
import textwrap
from typing import TYPE_CHECKING

from suite.results import stats
from suite.results.safetext import encodable, plain

if TYPE_CHECKING:  # the tables are pandas frames; rendering them needs no pandas of its own
    import pandas as pd

WIDTH = 100
DROP_ORDER = ["note", "baseline_s", "time_s", "peak_mem_mb", "throughput", "final_quality", "budget", "target", "v", "dataset", "profile"]
MAX_CELL = 34
_BLANK = {"no target", "-", "", "nan", "None"}
_SHORT = {"time_to_target_s": "time_to_target", "final_quality": "quality", "peak_mem_mb": "mem_mb"}


def safe_streams() -> None:
    """Make stdout and stderr write any text: what their encoding lacks (ASCII under LC_ALL=C, or
    PYTHONIOENCODING=ascii; any lone surrogate) comes out as a backslash escape instead of raising."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # a replaced stream (a test's capture) may lack it
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def legend() -> str:
    """The one-line legend under a terminal table (under 100 columns)."""
    return (f"legend: median CI [{stats.CONFIDENCE:.0%} bootstrap, {stats.MIN_FOR_CI}+ values] or range [min, max]"
            " n=values; not reached: missed")


def render(table: pd.DataFrame, title: str = "", width: int = WIDTH) -> str:
    """`table` (cells already formatted) as aligned text no wider than `width`, with a header and notes."""
    if table.empty:
        return f"{title}\n(no comparable runs)" if title else "(no comparable runs)"
    table = table.astype(str).map(_shown)  # cells and names come from records: one line each, no escapes
    table.columns = [_shown(c) for c in table.columns]
    lines = [_shown(title)] if title else []
    constant = [c for c in table.columns if table[c].nunique() == 1 and len(table) > 1 and c in _LIFTABLE]
    if constant:
        lines.append(textwrap.fill("where: " + ", ".join(f"{c}={table[c].iloc[0]}" for c in constant), width,
                                   subsequent_indent="       ", break_on_hyphens=False))
        table = table.drop(columns=constant)
    # Columns with nothing in them (a speed run has no target, so no time-to-target or quality) go
    # first, so the throughput, utilisation and memory that such a table is about stay.
    blank = [c for c in table.columns if len(table.columns) > 2 and set(table[c]) <= _BLANK]
    table = table.drop(columns=blank)
    table = table.rename(columns={c: _SHORT.get(c, "baseline_s" if c.startswith("baseline (") else c)
                                  for c in table.columns})
    dropped = []
    order = (["reached", "dataset"] + DROP_ORDER) if blank else DROP_ORDER  # targetless: the figures matter most
    for column in [_SHORT.get(c, c) for c in order]:
        if _width(table) <= width:
            break
        if column in table.columns and len(table.columns) > 2:
            table = table.drop(columns=column)
            dropped.append(column)
    lines.append(_text(table, width))
    if dropped:
        lines.append(_fit(f"left out to fit {width} columns: {', '.join(dropped)} (wide: --format md)", width))
    return "\n".join(lines)


def notes(lines: list[str], width: int = WIDTH) -> str:
    """Notes as "- " items wrapped to `width`."""
    return "\n".join(textwrap.fill(plain(line), width, initial_indent="- ", subsequent_indent="  ") for line in lines)


_LIFTABLE = {"torch", "task", "v", "profile", "dataset", "target", "hardware", "model", "precision", "compile",
             "cuda_graphs", "world_size", "pretrained", "data", "config", "variant", "budget"}


def _shown(text: str) -> str:
    """`text` as this terminal shows it (what its encoding lacks as escapes), so widths are counted right."""
    return encodable(plain(text), getattr(sys.stdout, "encoding", None))


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    return table.map(lambda v: v if len(v) <= MAX_CELL else v[:MAX_CELL - 1] + "~")


def _widths(table: pd.DataFrame) -> list[int]:
    cells = _cells(table)
    return [max(len(str(c)), *(len(v) for v in cells[c])) for c in cells.columns]


def _width(table: pd.DataFrame) -> int:
    return sum(_widths(table)) + 2 * (len(table.columns) - 1)


def _text(table: pd.DataFrame, width: int) -> str:
    cells, widths = _cells(table), _widths(table)
    rows = [list(map(str, table.columns))] + cells.values.tolist()
    out = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(_fit(line, width) for line in out)


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[:width - 1] + "~"
