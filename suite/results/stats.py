"""Statistics over seeds: medians, bootstrap intervals, speedups. Pure functions.

Conventions (shared by every function here):
- A sample is a 1-D sequence of floats, one value per seed.
- A run that never reached its target has time-to-target `inf` (censored).
  The median then stays finite while more than half the seeds reached the
  target, and is `inf` ("not reached") otherwise: the AlgoPerf rule
  (Dahl et al. 2023, "Benchmarking Neural Network Training Algorithms").
- Intervals are percentile bootstrap intervals: resample the seeds with
  replacement `n_resamples` times, compute the statistic on each resample,
  and take the empirical (1-c)/2 and (1+c)/2 quantiles, picked from the
  resampled values without interpolation so that an `inf` stays `inf`.
  This is scipy.stats.bootstrap(method="percentile") made safe for `inf`.
  Several samples (two machines, several tasks) are resampled each within
  its own stratum, as rliable's stratified bootstrap does (Agarwal et al.
  2021). Fewer than two values give no interval (None), never a fake one.
- Below `MIN_FOR_CI` (5) values a cell shows its range instead, named a
  range (`spread`): for n <= 5 the percentile bootstrap interval of the
  median is [min, max] itself, and it covers the true median only with
  probability 1 - 2 * 0.5^n (n = 2: 50%, 3: 75%, 4: 88%), far from 95%.
  From n = 5 on it covers 92-95% in simulation (lognormal, normal and
  exponential samples; tests/test_interval_coverage.py), so only there is
  it called a 95% interval.
- Resampling uses a fixed seed, so the same records give the same tables.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0
METHOD = (f"{CONFIDENCE:.0%} percentile bootstrap over seeds ({N_RESAMPLES} resamples; "
          "stratified per task and machine for speedups)")

MIN_FOR_CI = 5  # fewer values: the range, not a bootstrap interval (see the module docstring)
RANGE, CI = "range", "95% CI"  # how a spread is named in every table

Interval = tuple[float, float]
Spread = tuple[float, float, str]  # (low, high, RANGE or CI)


def median(values: Sequence[float]) -> float:
    """Median of `values` (shape [n]); `inf` entries count as larger than any number; nan when empty."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return float("nan")
    return float(_median_rows(arr[None, :])[0])


def cell_columns(name: str, values: Sequence[float]) -> dict[str, Any]:
    """A table cell's numeric columns for one measure: its median, the low and high ends of its spread,
    what the spread is (`spread`: CI or range, empty for one value), and how many values it has."""
    lo, hi, kind = spread(values) or (math.nan, math.nan, "")
    return {name: median(values), f"{name}_lo": lo, f"{name}_hi": hi, f"{name}_spread": kind, f"{name}_n": len(values)}


def median_range(values: Sequence[float | None], spec: str = ",.2f", unit: str = "") -> str:
    """'median (min..max)' of the values given (None left out), each formatted with `spec` and `unit`:
    how the bench scripts report repeated timings. '-' when none is given."""
    given = [v for v in values if v is not None]
    if not given:
        return "-"
    med, low, high = (format(v, spec) + unit for v in (float(np.median(given)), min(given), max(given)))
    return f"{med} ({low}..{high})"


def bootstrap_ci(values: Sequence[float], confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                 seed: int = SEED) -> Interval | None:
    """Percentile bootstrap interval of the median of `values` (shape [n]); None when n < 2."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None
    return _bootstrap_ci(arr.tobytes(), confidence, n_resamples, seed)


@functools.lru_cache(maxsize=4096)
def _bootstrap_ci(values: bytes, confidence: float, n_resamples: int, seed: int) -> Interval | None:
    """`bootstrap_ci` of the float64 values in `values`: kept, since one cell's values reach several
    tables and plots of a report, and the fixed seed gives each the same interval."""
    rng = np.random.default_rng(seed)
    return _interval(_resampled_medians(np.frombuffer(values, dtype=float), rng, n_resamples), confidence)


def spread(values: Sequence[float], confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
           seed: int = SEED) -> Spread | None:
    """How far the values of a cell spread: None for fewer than two values; (min, max, RANGE) for fewer
    than MIN_FOR_CI; else the percentile bootstrap interval of the median, (lo, hi, CI)."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None
    if arr.size < MIN_FOR_CI:
        return float(arr.min()), float(arr.max()), RANGE
    lo, hi = bootstrap_ci(arr, confidence, n_resamples, seed)
    return lo, hi, CI


PRECISE = 0.05  # a repeated measurement means something when its spread is under 5% of its median


def precision(values: Sequence[float]) -> dict[str, Any]:
    """A repeated measurement's figure (bench/harness_overhead.py, bench/speed_spread.py): the median,
    the range, the `spread` (its kind and bounds) and that spread's width over the median
    (`precision`); `precise` when more than one value spread under PRECISE."""
    mid = median(values)
    low, high, kind = spread(values) or (mid, mid, "one rep")
    width = (high - low) / mid
    return {"median": mid, "min": min(values), "max": max(values), "low": low, "high": high,
            "spread_kind": kind, "precision": width, "precise": len(values) > 1 and width < PRECISE}


def speedup_spread(baseline: Sequence[float], other: Sequence[float]) -> Spread | None:
    """The spread of `speedup`: None with one value on each side; with fewer than MIN_FOR_CI on a side the
    range of ratios, [min(baseline) / max(other), max(baseline) / min(other)]; else `speedup_ci`."""
    b, o = np.asarray(baseline, dtype=float), np.asarray(other, dtype=float)
    if max(b.size, o.size) < 2 or min(b.size, o.size) == 0:
        return None
    if min(b.size, o.size) < MIN_FOR_CI:
        lo, hi = _ratios(np.array([b.min(), b.max()]), np.array([o.max(), o.min()]))
        return (0.0 if np.isnan(lo) else float(lo)), (math.inf if np.isnan(hi) else float(hi)), RANGE
    interval = speedup_ci(b, o)
    return None if interval is None else (*interval, CI)


def geomean_spread(pairs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> Spread | None:
    """The spread of `geomean_speedup`'s figure: its stratified bootstrap interval (CI) when every task has
    MIN_FOR_CI values on each side; else the geometric means of the tasks' ranges of ratios (RANGE)."""
    if not pairs or all(max(len(b), len(o)) < 2 for b, o in pairs):
        return None
    if all(min(len(b), len(o)) >= MIN_FOR_CI for b, o in pairs):
        interval = geomean_speedup(pairs)[1]
        return None if interval is None else (*interval, CI)
    lows, highs = [], []
    for b, o in pairs:
        one = speedup_spread(b, o)
        ratio = speedup(b, o)
        lows.append(one[0] if one else ratio)
        highs.append(one[1] if one else ratio)
    with np.errstate(divide="ignore"):
        return geometric_mean(lows), geometric_mean(highs), RANGE


def speedup(baseline: Sequence[float], other: Sequence[float]) -> float:
    """How many times faster `other` is than `baseline`: median(baseline) / median(other).

    Both are time-to-target samples (shape [n_b] and [n_o]). nan when either
    median is `inf` (not reached) or a sample is empty: no speedup exists then.
    """
    b, o = median(baseline), median(other)
    if not (np.isfinite(b) and np.isfinite(o)) or o <= 0:
        return float("nan")
    return b / o


def speedup_ci(baseline: Sequence[float], other: Sequence[float], confidence: float = CONFIDENCE,
               n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Interval | None:
    """Interval of `speedup`, resampling each sample within itself; None when both have < 2 values."""
    b, o = np.asarray(baseline, dtype=float), np.asarray(other, dtype=float)
    if max(b.size, o.size) < 2 or min(b.size, o.size) == 0:
        return None
    rng = np.random.default_rng(seed)
    ratios = _ratios(_resampled_medians(b, rng, n_resamples), _resampled_medians(o, rng, n_resamples))
    return _interval(ratios, confidence)


def geometric_mean(values: Sequence[float]) -> float:
    """exp(mean(log(values))) of positive finite values (shape [k]); nan when empty."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return float("nan")
    return float(np.exp(np.mean(np.log(arr))))


def geomean_speedup(pairs: Sequence[tuple[Sequence[float], Sequence[float]]], confidence: float = CONFIDENCE,
                    n_resamples: int = N_RESAMPLES, seed: int = SEED) -> tuple[float, Interval | None]:
    """One suite figure: the geometric mean over tasks of per-task speedups, with its interval.

    `pairs` holds one (baseline times, other times) per task, each of shape
    [n_seeds]; callers pass only tasks whose medians are finite on both
    sides. The interval comes from a stratified bootstrap: each resample
    redraws the seeds of every task on each side, recomputes every speedup
    and their geometric mean. A resample in which a task's median becomes
    `inf` gives speedup 0 (other not reached) or `inf` (baseline not
    reached); one where both become `inf` is left out. Returns (point,
    interval); the interval is None when no task has two or more seeds.
    """
    point = geometric_mean([speedup(b, o) for b, o in pairs])
    if not pairs or all(max(len(b), len(o)) < 2 for b, o in pairs):
        return point, None
    rng = np.random.default_rng(seed)
    logs = np.zeros(n_resamples)
    for b, o in pairs:
        ratios = _ratios(_resampled_medians(np.asarray(b, dtype=float), rng, n_resamples),
                         _resampled_medians(np.asarray(o, dtype=float), rng, n_resamples))
        with np.errstate(divide="ignore"):
            logs = logs + np.log(ratios)
    return point, _interval(np.exp(logs / len(pairs)), confidence)


def pareto_front(times: Sequence[float], qualities: Sequence[float], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both time (lower) and quality, sorted by time.

    `times` and `qualities` have shape [n]; points with a nan are never on the front.
    """
    t = np.asarray(times, dtype=float)
    q = np.asarray(qualities, dtype=float) * (1.0 if higher_is_better else -1.0)
    order = [i for i in np.lexsort((-q, t)) if np.isfinite(t[i]) and not np.isnan(q[i])]
    front, best = [], -np.inf
    for i in order:
        if q[i] > best:
            front.append(int(i))
            best = q[i]
    return front


def _median_rows(arr: np.ndarray) -> np.ndarray:
    """Row medians of a 2-D array that may hold `inf` (np.median would give nan for inf - inf).
    A partial sort: only the middle one or two values of each row are put in place."""
    n = arr.shape[1]
    s = np.partition(arr, sorted({(n - 1) // 2, n // 2}), axis=1)
    lo, hi = s[:, (n - 1) // 2], s[:, n // 2]
    with np.errstate(invalid="ignore"):
        return np.where(lo == hi, lo, (lo + hi) / 2)


def _resampled_medians(arr: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """Medians of `n_resamples` resamples with replacement of `arr` (shape [n]) -> shape [n_resamples].

    The values are sorted once and each resample's draws replaced by the ranks of the values drawn: the
    middle ranks of a row point at its middle values, so sorting small integers gives the same medians
    as partitioning the values, in half the time.
    """
    n = arr.size
    order = np.argsort(arr, kind="stable")
    ranks = np.empty(n, dtype=np.intp)
    ranks[order] = np.arange(n)
    drawn = ranks[rng.integers(0, n, size=(n_resamples, n))]
    drawn.sort(axis=1)
    ordered = arr[order]
    lo, hi = ordered[drawn[:, (n - 1) // 2]], ordered[drawn[:, n // 2]]
    with np.errstate(invalid="ignore"):
        return np.where(lo == hi, lo, (lo + hi) / 2)


def _ratios(baseline: np.ndarray, other: np.ndarray) -> np.ndarray:
    """baseline / other elementwise; inf/inf (neither reached) -> nan; x/inf -> 0; inf/x -> inf."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return baseline / other


def _interval(samples: np.ndarray, confidence: float) -> Interval | None:
    kept = samples[~np.isnan(samples)]
    if kept.size == 0:
        return None
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(kept, [alpha, 1 - alpha], method="inverted_cdf")
    return float(lo), float(hi)
