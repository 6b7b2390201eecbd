"""Seed summaries, paired differences and their verdicts, checked against scipy.stats on hand-made numbers."""

import math

import pytest
from scipy import stats

from rtseg_core import (
    BETTER,
    INDISTINGUISHABLE,
    SINGLE_RUN,
    WORSE,
    ConfigError,
    PairedDifference,
    collapsed_classes,
    paired_difference,
    seed_summary,
)

# measured.md: paper and the demo's trial-11, 20 epochs x 96 px, seeds 0, 1, 2 (test Dice)
PAPER = {0: 0.9088, 1: 0.9123, 2: 0.9131}
TRIAL11 = {0: 0.9198, 1: 0.9153, 2: 0.9233}


def test_seed_summary_matches_scipy():
    s = seed_summary(PAPER)
    xs = list(PAPER.values())
    lo, hi = stats.t.interval(0.95, 2, loc=sum(xs) / 3, scale=stats.sem(xs))
    assert s.n == 3 and s.seeds == (0, 1, 2)
    assert s.mean == pytest.approx(sum(xs) / 3)
    assert s.std == pytest.approx(stats.tstd(xs))
    assert (s.low, s.high) == pytest.approx((lo, hi))
    assert type(s).from_dict(s.to_dict()) == s


def test_one_seed_has_no_interval():
    s = seed_summary({4: 0.9})
    assert (s.n, s.std, s.low, s.high) == (1, None, None, None)


def test_paired_difference_matches_scipy_ttest_rel():
    d = paired_difference(TRIAL11, PAPER)
    ref = stats.ttest_rel(list(TRIAL11.values()), list(PAPER.values())).confidence_interval(0.95)
    assert d.differences == pytest.approx((0.0110, 0.0030, 0.0102))
    assert (d.low, d.high) == pytest.approx((ref.low, ref.high))
    # +1.10, +0.30 and +1.02 points: the spread of three seeds does not exclude 0
    assert d.verdict == INDISTINGUISHABLE
    assert "3 paired seeds" in d.describe() and "+0.81 points" in d.describe()


@pytest.mark.parametrize(
    "cand,ref,verdict",
    [
        ({0: 0.92, 1: 0.93, 2: 0.925}, {0: 0.90, 1: 0.91, 2: 0.904}, BETTER),
        ({0: 0.88, 1: 0.89, 2: 0.884}, {0: 0.90, 1: 0.91, 2: 0.905}, WORSE),
        ({0: 0.91, 1: 0.90, 2: 0.92}, {0: 0.90, 1: 0.91, 2: 0.91}, INDISTINGUISHABLE),
        ({0: 0.95}, {0: 0.90}, SINGLE_RUN),  # +5 points in one run is still no verdict
    ],
)
def test_verdict_rule(cand, ref, verdict):
    assert paired_difference(cand, ref).verdict == verdict


def test_only_common_seeds_are_paired_and_none_common_is_an_error():
    d = paired_difference({0: 0.9, 1: 0.91, 7: 0.99}, {0: 0.89, 1: 0.9, 2: 0.5})
    assert d.seeds == (0, 1)
    with pytest.raises(ConfigError, match="share no seed"):
        paired_difference({0: 0.9}, {1: 0.9})
    with pytest.raises(ConfigError, match="seed 1"):
        paired_difference({0: 0.9, 1: math.nan}, {0: 0.9, 1: 0.9})


def test_identical_differences_give_a_point_interval_not_nan():
    d = paired_difference({0: 0.92, 1: 0.93}, {0: 0.91, 1: 0.92})
    assert d.low == pytest.approx(0.01) and d.high == pytest.approx(0.01) and d.verdict == BETTER
    assert isinstance(d, PairedDifference)


def test_collapsed_classes_on_a_metrics_record():
    # bench --proxy's 12-epoch ground truth at 64 px: PS never learned in 5 of 13 runs
    assert collapsed_classes({"ps": 0.0, "fh": 0.93}) == ["ps"]
    assert collapsed_classes({"ps": 0.049, "fh": None}) == ["ps", "fh"]
    assert collapsed_classes({"ps": 0.61, "fh": 0.95}) == []


def test_speed_ratio_reads_back_says_a_slowdown_and_refuses_a_bad_row():
    from rtseg_core import SpeedRatio

    fast = SpeedRatio(1.78, 1.74, 1.82, 30)
    assert SpeedRatio.read(fast.to_dict(), source="latency.json: trial-1") == fast
    assert fast.describe() == "1.78x [1.74, 1.82] faster"
    assert SpeedRatio(0.5, 0.4, 0.625, 30).describe() == "2.00x [1.60, 2.50] SLOWER"  # the interval inverted too
    assert SpeedRatio.read(None, source="x") is None  # an estimate: no rounds, no ratio interval
    with pytest.raises(ConfigError, match=r"latency.json: trial-1.*low"):
        SpeedRatio.read({**fast.to_dict(), "low": -1.0}, source="latency.json: trial-1")
