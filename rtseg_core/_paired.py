"""Verdicts that survive seed noise: a metric over several training seeds, and paired differences.

One training of the same pair of architectures differed by +0.30 to +1.10 Dice points depending
on the seed, so a difference between two candidates is a verdict only over several seeds, paired
(seed s trains every candidate on the same split and data order). Here:

- :func:`seed_summary` - mean, standard deviation and a two-sided Student-t interval of one
  candidate's metric over its seeds (``scipy.stats.t``); one seed has no interval.
- :func:`paired_difference` - the per-seed difference ``candidate - reference`` over the seeds both
  have, its mean and t-interval (``scipy.stats.ttest_1samp(...).confidence_interval``), and the
  verdict: ``better`` when the whole interval is above 0, ``worse`` when below, else
  ``indistinguishable``; with one common seed the verdict is ``single run`` (never a win).
- :func:`collapsed_classes` - a training run that never learned a class (its Dice near 0) is
  reported as collapsed, with its seed, instead of being averaged in silently.

Dice is a fraction in [0, 1]; :meth:`PairedDifference.describe` prints differences in points (x 100).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtseg_core._errors import ConfigError
from rtseg_core._fields import Fields
from rtseg_core._records import Record

BETTER, WORSE, INDISTINGUISHABLE, SINGLE_RUN = "better", "worse", "indistinguishable", "single run"
VERDICTS = (BETTER, INDISTINGUISHABLE, WORSE, SINGLE_RUN)
COLLAPSE_DICE = 0.05  # a class whose Dice stays below this was never learned in that run


@dataclass(frozen=True)
class SeedSummary(Record):
    """One metric of one candidate over its training seeds."""

    n: int
    mean: float
    std: float | None  # sample standard deviation (ddof 1); None for one seed
    low: float | None  # two-sided t-interval of the mean; None for one seed
    high: float | None
    confidence: float = 0.95
    seeds: tuple[int, ...] = ()


@dataclass(frozen=True)
class PairedDifference(Record):
    """``candidate - reference`` of one metric over the seeds both were trained with."""

    seeds: tuple[int, ...]
    differences: tuple[float, ...]  # per seed, in the metric's unit (Dice: a fraction)
    mean: float
    low: float | None  # two-sided t-interval of the mean difference; None for one seed
    high: float | None
    verdict: str  # better | indistinguishable | worse | single run
    confidence: float = 0.95

    def describe(self, *, scale: float = 100.0, unit: str = "points") -> str:
        """E.g. ``+0.81 points [+0.12, +1.50] (95 % t-interval, 3 paired seeds): better``."""
        n = len(self.seeds)
        if self.low is None or self.high is None:
            return f"{self.mean * scale:+.2f} {unit} (1 seed: a single run, no verdict)"
        pct = round(100 * self.confidence)
        return (
            f"{self.mean * scale:+.2f} {unit} [{self.low * scale:+.2f}, {self.high * scale:+.2f}] "
            f"({pct} % t-interval, {n} paired seeds): {self.verdict}"
        )


def _finite(values: Mapping[int, float], what: str) -> dict[int, float]:
    out = {}
    for seed, v in values.items():
        if v is None or not math.isfinite(float(v)):
            raise ConfigError(f"{what}: seed {seed} has no finite value ({v!r})")
        out[int(seed)] = float(v)
    return out


def seed_summary(values: Mapping[int, float], *, confidence: float = 0.95, what: str = "metric") -> SeedSummary:
    """Mean, sample standard deviation and t-interval of ``values`` (seed -> metric)."""
    vals = _finite(values, what)
    if not vals:
        raise ConfigError(f"{what}: no seeds to summarize")
    xs = [vals[s] for s in sorted(vals)]
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return SeedSummary(n=1, mean=mean, std=None, low=None, high=None, confidence=confidence, seeds=tuple(vals))
    from scipy import stats

    std = float(stats.tstd(xs))
    if std == 0.0:
        low = high = mean
    else:
        low, high = (float(v) for v in stats.t.interval(confidence, len(xs) - 1, loc=mean, scale=stats.sem(xs)))
    return SeedSummary(
        n=len(xs), mean=mean, std=std, low=low, high=high, confidence=confidence, seeds=tuple(sorted(vals))
    )


def paired_difference(
    candidate: Mapping[int, float],
    reference: Mapping[int, float],
    *,
    confidence: float = 0.95,
    what: str = "Dice",
) -> PairedDifference:
    """The per-seed difference ``candidate[s] - reference[s]`` over the common seeds, and its verdict.

    Seeds only one side has are left out (the pairing is the point); no common seed is an error.
    """
    a, b = _finite(candidate, f"{what} of the candidate"), _finite(reference, f"{what} of the reference")
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        raise ConfigError(
            f"{what}: the candidate (seeds {sorted(a)}) and the reference (seeds {sorted(b)}) share no seed"
        )
    diffs = tuple(a[s] - b[s] for s in seeds)
    mean = sum(diffs) / len(diffs)
    if len(diffs) == 1:
        return PairedDifference(seeds, diffs, mean, None, None, SINGLE_RUN, confidence)
    if all(d == diffs[0] for d in diffs):  # no spread: the interval is the point (scipy returns NaN)
        low = high = mean
    else:
        from scipy import stats

        ci = stats.ttest_1samp(diffs, 0.0).confidence_interval(confidence)
        low, high = float(ci.low), float(ci.high)
    verdict = BETTER if low > 0 else WORSE if high < 0 else INDISTINGUISHABLE
    return PairedDifference(seeds, diffs, mean, low, high, verdict, confidence)


@dataclass(frozen=True)
class SpeedRatio(Record):
    """A model's speed relative to ``paper`` from one timing run: ``median(paper) / median(model)``.

    ``low``/``high``: the timer's 95 % percentile-bootstrap interval resampling the run's whole
    alternating rounds (profiling.speedup); above 1 the model is faster.
    """

    ratio: float
    low: float
    high: float
    rounds: int
    clock: str = "wall"

    def describe(self) -> str:
        """``1.78x [1.74, 1.82] faster``; a slow-down as such, its interval inverted with it."""
        if self.ratio >= 1:
            return f"{self.ratio:.2f}x [{self.low:.2f}, {self.high:.2f}] faster"
        return f"{1 / self.ratio:.2f}x [{1 / self.high:.2f}, {1 / self.low:.2f}] SLOWER"

    @classmethod
    def read(cls, data: Any, *, source: str) -> SpeedRatio | None:
        """From a latency row's ``vs_paper`` (None stays None: nothing was timed in rounds)."""
        if data is None:
            return None
        f = Fields(data, source)
        return cls(
            ratio=f.number("ratio", positive=True), low=f.number("low", positive=True),
            high=f.number("high", positive=True),
            rounds=f.int("rounds", minimum=1), clock=f.str("clock", choices=("wall", "cpu")),
        )  # fmt: skip


def collapsed_classes(per_class: Mapping[str, float | None], *, threshold: float = COLLAPSE_DICE) -> list[str]:
    """The classes whose Dice stayed below ``threshold`` (or is missing/NaN) in one training run."""
    return [
        name
        for name, dice in per_class.items()
        if dice is None or not math.isfinite(float(dice)) or float(dice) < threshold
    ]
