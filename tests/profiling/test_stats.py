from __future__ import annotations

import math

import numpy as np
import pytest

from profiling._bench import BenchResult, VariantResult
from profiling._stats import speedup_interval, summarize_times
from rtseg_core import ProfilingError


def test_summary_of_known_values():
    s = summarize_times([float(x) for x in range(1, 11)])  # 1..10 ms
    assert s == {
        "median_ms": 5.5,
        "p90_ms": pytest.approx(9.1),
        "iqr_ms": pytest.approx(4.5),  # 7.75 - 3.25
        "mean_ms": 5.5,
        "min_ms": 1.0,
        "fps": pytest.approx(1000 / 5.5),
    }


def test_summary_matches_numpy_and_batch_scales_fps():
    rng = np.random.default_rng(3)
    times = list(rng.gamma(9.0, 3.0, size=257))
    s = summarize_times(times, batch=4)
    assert s["median_ms"] == pytest.approx(np.median(times))
    assert s["p90_ms"] == pytest.approx(np.percentile(times, 90))
    assert s["fps"] == pytest.approx(4 * 1000 / np.median(times))
    one = summarize_times([12.5])
    assert one["median_ms"] == one["p90_ms"] == one["min_ms"] == 12.5 and one["iqr_ms"] == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, 0.0], [1.0, -2.0], [math.nan], [math.inf]])
def test_summary_rejects_impossible_times(bad):
    with pytest.raises(ProfilingError):
        summarize_times(bad)


def test_summary_rejects_bad_batch():
    with pytest.raises(ProfilingError, match="batch"):
        summarize_times([1.0], batch=0)


def test_speedup_interval_of_an_exact_ratio_is_that_ratio():
    rng = np.random.default_rng(1)
    base = rng.uniform(10, 30, size=40)  # load changes from round to round hit both alike
    assert speedup_interval(base, base / 2.0) == pytest.approx((2.0, 2.0))


def test_speedup_interval_covers_the_ratio_and_narrows_with_rounds():
    rng = np.random.default_rng(2)

    def rounds(n):
        load = rng.uniform(1.0, 1.5, size=n)  # shared by both variants of a round
        return 20.0 * load * rng.lognormal(0, 0.1, n), 10.0 * load * rng.lognormal(0, 0.1, n)

    base, var = rounds(20)
    low, high = speedup_interval(base, var)
    assert low < np.median(base) / np.median(var) < high and 1.5 < low < high < 2.6
    wide = high - low
    low, high = speedup_interval(*rounds(400))
    assert high - low < wide / 2
    assert speedup_interval(base, var, seed=5) == speedup_interval(base, var, seed=5)  # deterministic


def test_speedup_interval_needs_paired_rounds():
    with pytest.raises(ProfilingError, match="paired rounds"):
        speedup_interval([1.0, 2.0], [1.0])


def _variant(name, times):
    return VariantResult(name=name, backend="x", precision="fp32", description="", runs=len(times),
                         times_ms=list(times), **summarize_times(times))  # fmt: skip


def test_bench_speedups_come_with_their_interval():
    base = [20.0, 22.0, 30.0, 21.0, 25.0, 20.5]
    fast = [t / 2 for t in base]
    result = BenchResult(variants=(_variant("slow", base), _variant("fast", fast)), baseline="slow")
    assert result.to_dict()["speedup_ci95_vs_baseline"]["fast"] == pytest.approx([2.0, 2.0])
    sentence = result.comparisons()[0]
    assert sentence.startswith("fast is 2.00x faster than slow (95 % CI 2.00-2.00x, bootstrap over 6 paired rounds")
    assert "95 % CI" in result.format_table().splitlines()[1]
    unpaired = BenchResult(variants=(_variant("slow", base), _variant("fast", fast[:3])), baseline="slow")
    assert "no interval" in unpaired.comparisons()[0]  # never a bare ratio without saying why


def test_median_interval_resamples_whole_rounds_as_scipy_bootstrap_does():
    from scipy import stats

    from profiling._stats import median_interval

    rng = np.random.default_rng(3)
    rows = 10.0 + rng.gamma(2.0, 0.5, size=(30, 3)) + np.arange(30)[:, None] * 0.05  # a slow drift over rounds
    low, high = median_interval(rows, resamples=4000)
    # the same statistic through scipy: resample round indices, median of the chosen rounds' runs
    ref = stats.bootstrap((np.arange(30),), lambda i, axis=-1: np.median(rows[i].reshape(*i.shape[:-1], -1), axis=-1),
                          method="percentile", n_resamples=4000, random_state=0, vectorized=True)  # fmt: skip
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.1 * width)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.1 * width)
    assert low < float(np.median(rows)) < high
    assert median_interval([5.0] * 10) == (5.0, 5.0)  # no spread, no width
