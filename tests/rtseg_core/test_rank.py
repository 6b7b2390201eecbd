"""Rank correlation and its bootstrap interval, checked against scipy.stats."""

import math

import numpy as np
import pytest
from scipy import stats

from rtseg_core import ConfigError, kendall_tau, rank_agreement, spearman
from rtseg_core._rank import average_ranks, bootstrap_interval

CASES = [
    ([0.1, 0.4, 0.35, 0.8, 0.2], [0.5, 0.9, 0.7, 0.95, 0.6]),  # no ties
    ([0.4, 0.4, 0.1, 0.9, 0.9, 0.3], [0.2, 0.8, 0.1, 0.7, 0.7, 0.5]),  # ties on both sides
    ([0.0, 0.0, 0.0, 0.46, 0.41, 0.5, 0.3], [0.9, 0.88, 0.91, 0.909, 0.9077, 0.92, 0.85]),  # proxy zeros
    (list(range(10)), list(range(10))[::-1]),  # perfect disagreement
]


@pytest.mark.parametrize("a,b", CASES)
def test_coefficients_match_scipy(a, b):
    assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert average_ranks(a) == pytest.approx(stats.rankdata(a))


def test_constant_scoring_is_undefined_not_zero():
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))


@pytest.mark.parametrize("statistic,scipy_stat", [(spearman, "spearmanr"), (kendall_tau, "kendalltau")])
def test_bootstrap_matches_scipy_percentile_interval(statistic, scipy_stat):
    rng = np.random.default_rng(3)
    a = rng.random(14)
    b = a + 0.3 * rng.random(14)
    ours = bootstrap_interval(a, b, statistic, n_resamples=3000, seed=11)

    def stat(x, y):
        return getattr(stats, scipy_stat)(x, y).statistic

    ref = stats.bootstrap(
        (a, b), stat, paired=True, vectorized=False, method="percentile", n_resamples=3000,
        rng=np.random.default_rng(11),
    ).confidence_interval  # fmt: skip
    # The same resamples (same seed): with no undefined resample the intervals are scipy's exactly.
    assert ours[0] == pytest.approx(ref.low, abs=1e-12)
    assert ours[1] == pytest.approx(ref.high, abs=1e-12)
    assert ours[2] == 0


def test_bootstrap_skips_undefined_resamples_instead_of_returning_nan():
    # Five models, two of them tied on both scorings: some resamples draw a constant scoring.
    a, b = [0.1, 0.1, 0.5, 0.7, 0.9], [0.2, 0.2, 0.6, 0.65, 0.95]
    low, high, undefined = bootstrap_interval(a, b, spearman, n_resamples=2000, seed=0)
    assert undefined > 0
    assert math.isfinite(low) and math.isfinite(high) and low <= high


def test_rank_agreement_record_and_errors():
    a, b = CASES[2]
    r = rank_agreement(a, b, n_resamples=500, seed=1, a_label="proxy", b_label="full")
    assert r.n == 7 and r.kendall_low <= r.kendall_tau <= r.kendall_high
    assert r.spearman_low <= r.spearman <= r.spearman_high
    assert "n = 7" in r.describe()
    assert type(r).from_dict(r.to_dict()) == r
    with pytest.raises(ConfigError, match="at least 3"):
        rank_agreement([1, 2], [1, 2])
    with pytest.raises(ConfigError, match="finite"):
        rank_agreement([1, 2, float("nan")], [1, 2, 3])


def test_vectorized_coefficients_match_scipy_row_by_row():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 4, size=(50, 6)).astype(float)  # many ties and some constant rows
    b = rng.integers(0, 4, size=(50, 6)).astype(float)
    taus, rhos = kendall_tau(a, b, axis=-1), spearman(a, b, axis=-1)
    for i in range(len(a)):
        for ours, ref in (
            (taus[i], stats.kendalltau(a[i], b[i]).statistic),
            (rhos[i], stats.spearmanr(a[i], b[i]).statistic),
        ):
            assert (math.isnan(ours) and math.isnan(ref)) or ours == pytest.approx(ref, abs=1e-12)
