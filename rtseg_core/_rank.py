"""Rank agreement between two scorings of the same models (e.g. proxy Dice vs fully trained Dice).

Kendall's tau-b and Spearman's rho, each with a percentile bootstrap 95 % interval over the
models (pairs are resampled with replacement). Plain numpy so that every layer can use it; the
tests check the coefficients against ``scipy.stats.kendalltau``/``spearmanr`` and the interval
against ``scipy.stats.bootstrap(method="percentile")``.

A coefficient is undefined (NaN) when either scoring is constant over the models; a bootstrap
resample that draws such a set is skipped and counted (``undefined_resamples``), never averaged
in as 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rtseg_core._errors import ConfigError
from rtseg_core._records import Record


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span (scipy's ``rankdata(method="average")``)."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks; NaN if either side is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else math.nan


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either scoring handled as scipy does); NaN if either side is constant."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), k=1)
    sx, sy = dx[iu], dy[iu]
    s = float((sx * sy).sum())  # concordant minus discordant pairs
    n_x, n_y = float((sx != 0).sum()), float((sy != 0).sum())  # pairs not tied in x (in y)
    denom = math.sqrt(n_x * n_y)
    return s / denom if denom > 0 else math.nan


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

    ``undefined`` counts resamples whose statistic was NaN (skipped). ``(nan, nan, n)`` when
    fewer than half of the resamples gave a value.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(x)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    stats = np.array([statistic(x[i], y[i]) for i in idx], dtype=float)
    ok = stats[np.isfinite(stats)]
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
