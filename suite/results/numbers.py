"""Numbers read from records and shown in tables: one reading rule and one short format for every table."""
from __future__ import annotations

import math
from typing import Any


def number(value: Any, missing: float | None = math.nan) -> float | None:
    """A record's figure as a float; `missing` for null, text or a bool (a bool is not a measurement)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else missing


def short_number(value: float | None, inf: str = "not reached") -> str:
    """20,232 rather than 2.023e+04, else four significant digits; "-" for no value; `inf` for infinity
    (time-to-target of a run that missed its target)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == math.inf:
        return inf
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
