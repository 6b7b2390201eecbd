"""Rank agreement between two scorings of the same models (e.g. proxy Dice vs fully trained Dice).

Kendall's tau-b and Spearman's rho, vectorized over bootstrap resamples (scipy's own functions are
not, and 2 x 2000 calls took seconds; the tests check ours against ``scipy.stats.kendalltau``/
``spearmanr``). The 95 % interval is scipy's paired percentile bootstrap over the models
(``scipy.stats.bootstrap``),
with one difference that matters for small fronts: a coefficient is undefined (NaN) when either
scoring is constant over the models, and a resample that draws such a set is skipped and counted
(``undefined_resamples``), never averaged in as 0 and never allowed to turn the whole interval
into NaN (scipy's percentile of a distribution holding a NaN is NaN).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rtseg_core._errors import ConfigError
from rtseg_core._records import Record


def _stats():
    from scipy import stats  # imported on use: the CLI loads this package for its errors

    return stats


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span (``scipy.stats.rankdata``)."""
    return _stats().rankdata(np.asarray(values, dtype=float), method="average")


def spearman(a, b, axis: int = -1):
    """Spearman's rho along ``axis`` (Pearson's correlation of scipy's average ranks); NaN where a side is constant.

    Vectorized so that the bootstrap scores all resamples at once; a test checks it against
    ``scipy.stats.spearmanr`` (which is not vectorized over resamples).
    """
    ra = _stats().rankdata(np.asarray(a, dtype=float), method="average", axis=axis)
    rb = _stats().rankdata(np.asarray(b, dtype=float), method="average", axis=axis)
    ra = ra - ra.mean(axis=axis, keepdims=True)
    rb = rb - rb.mean(axis=axis, keepdims=True)
    denom = np.sqrt((ra * ra).sum(axis=axis) * (rb * rb).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 0, (ra * rb).sum(axis=axis) / np.where(denom > 0, denom, 1.0), np.nan)
    return float(rho) if rho.ndim == 0 else rho


def kendall_tau(a, b, axis: int = -1):
    """Kendall's tau-b along ``axis`` (ties as ``scipy.stats.kendalltau``); NaN where a side is constant.

    Vectorized over resamples like :func:`spearman`, checked against scipy in the tests.
    """
    x = np.moveaxis(np.asarray(a, dtype=float), axis, -1)
    y = np.moveaxis(np.asarray(b, dtype=float), axis, -1)
    iu = np.triu_indices(x.shape[-1], k=1)
    sx = np.sign(x[..., :, None] - x[..., None, :])[..., iu[0], iu[1]]
    sy = np.sign(y[..., :, None] - y[..., None, :])[..., iu[0], iu[1]]
    s = (sx * sy).sum(axis=-1)  # concordant minus discordant pairs
    denom = np.sqrt((sx != 0).sum(axis=-1) * (sy != 0).sum(axis=-1).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(denom > 0, s / np.where(denom > 0, denom, 1.0), np.nan)
    return float(tau) if tau.ndim == 0 else tau


def bootstrap_interval(
    a: Sequence[float],
    b: Sequence[float],
    statistic: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, int]:
    """Percentile bootstrap interval of ``statistic`` over paired resamples: ``(low, high, undefined)``.

    The resamples are ``scipy.stats.bootstrap``'s (paired, seeded; ``statistic`` is vectorized with
    an ``axis`` argument); ``undefined`` counts those whose statistic was NaN, which are left out of
    the percentiles. ``(nan, nan, n)`` when fewer than
    half of the resamples gave a value.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with warnings.catch_warnings():  # NaN resamples are handled below
        warnings.simplefilter("ignore")
        res = _stats().bootstrap(
            (x, y), statistic, paired=True, vectorized=True, method="percentile", n_resamples=n_resamples,
            confidence_level=confidence, rng=np.random.default_rng(seed),
        )  # fmt: skip
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    ok = dist[np.isfinite(dist)]
    undefined = int(n_resamples - len(ok))
    if len(ok) < n_resamples / 2:
        return math.nan, math.nan, undefined
    alpha = (1 - confidence) / 2
    low, high = np.percentile(ok, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high), undefined


@dataclass(frozen=True)
class RankAgreement(Record):
    """How well scoring ``a`` (e.g. proxy Dice) orders models like scoring ``b`` (e.g. full Dice)."""

    n: int
    kendall_tau: float
    kendall_low: float
    kendall_high: float
    spearman: float
    spearman_low: float
    spearman_high: float
    confidence: float = 0.95
    n_resamples: int = 2000
    seed: int = 0
    undefined_resamples: int = 0  # resamples skipped because one scoring was constant in them
    a_label: str = ""
    b_label: str = ""

    def describe(self) -> str:
        """One line, e.g. ``Spearman 0.70 [0.21, 0.93], Kendall tau 0.47 [0.11, 0.81] (95 % bootstrap, n = 10)``."""
        pct = round(100 * self.confidence)
        return (
            f"Spearman {_f(self.spearman)} [{_f(self.spearman_low)}, {_f(self.spearman_high)}], "
            f"Kendall tau {_f(self.kendall_tau)} [{_f(self.kendall_low)}, {_f(self.kendall_high)}] "
            f"({pct} % percentile bootstrap over models, {self.n_resamples} resamples, n = {self.n})"
        )


def rank_agreement(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    a_label: str = "",
    b_label: str = "",
) -> RankAgreement:
    """Kendall tau-b and Spearman of ``a`` vs ``b`` with bootstrap intervals (see the module docstring).

    Raises :class:`ConfigError` when the lengths differ, a value is not finite, or n < 3.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ConfigError(f"rank agreement: needs two equally long lists, got {len(x)} and {len(y)} values")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ConfigError("rank agreement: every value must be finite (drop models without both scores first)")
    if len(x) < 3:
        raise ConfigError(f"rank agreement: needs at least 3 models, got {len(x)}")
    kl, kh, ku = bootstrap_interval(x, y, kendall_tau, n_resamples=n_resamples, confidence=confidence, seed=seed)
    sl, sh, su = bootstrap_interval(x, y, spearman, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return RankAgreement(
        n=len(x),
        kendall_tau=kendall_tau(x, y),
        kendall_low=kl,
        kendall_high=kh,
        spearman=spearman(x, y),
        spearman_low=sl,
        spearman_high=sh,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        undefined_resamples=max(ku, su),
        a_label=a_label,
        b_label=b_label,
    )


def _f(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}"
