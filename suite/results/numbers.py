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


def finite(value: Any) -> float | None:
    """A finite number, or None for null, a bool, text or a non-finite value (other checks name those)."""
    kind = type(value)
    if kind is float:  # the common case first: this runs for every figure of every record read
        return value if value - value == 0 else None  # nan - nan and inf - inf are nan
    if kind is int:
        return float(value)
    if kind is bool or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
