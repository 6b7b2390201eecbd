from __future__ import annotations

import math

import numpy as np
import pytest

from profiling._stats import summarize_times
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
