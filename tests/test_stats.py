"""suite.results.stats on small samples whose answers are computed by hand in the comments."""
import math

import numpy as np
import pytest
import scipy.stats

from suite.results import stats

INF = math.inf


def test_median_treats_not_reached_as_slowest():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([1.0, 2.0, INF]) == 2.0  # 2 of 3 reached: the middle value is finite
    assert stats.median([1.0, INF, INF]) == INF  # most seeds missed: "not reached"
    assert stats.median([1.0, 2.0, 3.0, INF]) == 2.5
    assert math.isnan(stats.median([]))


def test_median_range_reports_median_min_and_max_of_the_values_given():
    assert stats.median_range([3.0, 1.0, 2.0, None, 10.0], spec=".1f", unit=" s") == "2.5 s (1.0 s..10.0 s)"
    assert stats.median_range([12_345.678, 9_000.0, 20_000.0]) == "12,345.68 (9,000.00..20,000.00)"
    assert stats.median_range([None, None]) == "-" and stats.median_range([]) == "-"


def test_bootstrap_ci_hand_computed():
    assert stats.bootstrap_ci([5.0]) is None  # one seed: no interval, never a fake one
    assert stats.bootstrap_ci([4.0, 4.0, 4.0]) == (4.0, 4.0)
    # Two seeds: resampled medians are a (p=1/4), (a+b)/2 (1/2), b (1/4); 2.5% and 97.5% quantiles: a and b.
    assert stats.bootstrap_ci([1.0, 2.0]) == (1.0, 2.0)
    # [10, 20, inf]: a resample's median is 10 when >= 2 draws are 10: p = 7/27 > 2.5%, likewise inf.
    assert stats.bootstrap_ci([10.0, 20.0, INF]) == (10.0, INF)


def test_bootstrap_ci_matches_scipy_percentile_method():
    x = np.array([3.0, 5.0, 8.0, 9.0, 12.0, 14.0, 20.0])
    ours = stats.bootstrap_ci(x)
    ref = scipy.stats.bootstrap((x,), np.median, method="percentile", n_resamples=4000, random_state=1)
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=2.0)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=2.0)
    assert ours[0] <= stats.median(x) <= ours[1]


def test_speedup_is_ratio_of_medians():
    assert stats.speedup([10.0, 12.0, 14.0], [5.0, 6.0, 7.0]) == 2.0  # 12 / 6
    assert math.isnan(stats.speedup([10.0, INF, INF], [5.0]))  # baseline not reached: no speedup
    assert math.isnan(stats.speedup([], [5.0]))
    lo, hi = stats.speedup_ci([10.0, 12.0, 14.0], [5.0, 6.0, 7.0])
    assert 10 / 7 <= lo <= 2.0 <= hi <= 14 / 5  # bounded by the extreme ratios of the samples
    assert stats.speedup_ci([10.0], [5.0]) is None


def test_geometric_mean_speedup():
    assert stats.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    # task 1: 12 / 6 = 2; task 2: 8 / 1 = 8 -> sqrt(16) = 4
    point, interval = stats.geomean_speedup([([10.0, 12.0, 14.0], [5.0, 6.0, 7.0]), ([8.0], [1.0])])
    assert point == pytest.approx(4.0)
    # task 2 has one seed each side, so only task 1 varies: sqrt(8 * [10/7, 14/5])
    assert math.sqrt(8 * 10 / 7) - 1e-9 <= interval[0] <= 4.0 <= interval[1] <= math.sqrt(8 * 14 / 5) + 1e-9
    assert stats.geomean_speedup([([8.0], [1.0]), ([3.0], [1.5])]) == (pytest.approx(4.0), None)


def test_geomean_interval_reaches_zero_when_a_resample_misses_the_target():
    # other machine: 2 of 3 seeds reached; a resample with 2+ "inf" draws has speedup 0 (p = 7/27 > 2.5%)
    _, (lo, hi) = stats.geomean_speedup([([10.0, 10.0, 10.0], [5.0, 5.0, INF])])
    assert lo == 0.0 and hi == 2.0


def test_pareto_front():
    # (time, quality): (1, .5) (2, .7) (3, .6) dominated by (2, .7), (4, .9)
    assert stats.pareto_front([1, 2, 3, 4], [0.5, 0.7, 0.6, 0.9], higher_is_better=True) == [0, 1, 3]
    assert stats.pareto_front([1, 2, 3], [5.0, 4.0, 6.0], higher_is_better=False) == [0, 1]  # lower is better
    assert stats.pareto_front([1, 2], [float("nan"), 1.0], True) == [1]


def test_bootstrap_ci_follows_the_values_not_the_sequence_object():
    """Intervals are kept per set of values: a list changed in place gets the interval of its new values."""
    values = [1.0, 2.0, 3.0, math.inf, math.inf, math.inf, math.inf]
    first = stats.bootstrap_ci(values)
    values[3:] = [4.0, 5.0, 6.0, 7.0]
    second = stats.bootstrap_ci(values)
    assert first[1] == math.inf and second[1] <= 7.0
    fresh = np.random.default_rng(stats.SEED).integers(0, 7, size=(stats.N_RESAMPLES, 7))
    medians = np.median(np.asarray(values)[fresh], axis=1)
    assert second == stats.bootstrap_ci(np.asarray(values)) == stats._interval(medians, stats.CONFIDENCE)


@pytest.mark.parametrize("values", [[3.0, 1.0, 2.0, 2.0, 5.0], [1.0, math.inf, 2.0, math.inf, 0.5, 7.0],
                                    list(np.round(np.random.default_rng(3).lognormal(size=101), 1))])
def test_resampled_medians_are_the_medians_of_the_resamples(values):
    arr = np.asarray(values, dtype=float)
    got = stats._resampled_medians(arr, np.random.default_rng(0), 300)
    drawn = arr[np.random.default_rng(0).integers(0, arr.size, size=(300, arr.size))]  # the same draws
    s = np.sort(drawn, axis=1)
    lo, hi = s[:, (arr.size - 1) // 2], s[:, arr.size // 2]
    with np.errstate(invalid="ignore"):
        want = np.where(lo == hi, lo, (lo + hi) / 2)
    assert np.array_equal(got, want)
