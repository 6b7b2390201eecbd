"""The summary statistics every latency record carries, computed the same way for every backend."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rtseg_core import ProfilingError


def summarize_times(times_ms: Sequence[float], *, batch: int = 1) -> dict[str, float]:
    """Summarise per-run latencies (milliseconds, one forward pass of one batch each).

    Returns exactly the :class:`~profiling._records.LatencyRecord` fields ``median_ms``, ``p90_ms``,
    ``iqr_ms`` (75th minus 25th percentile), ``mean_ms``, ``min_ms`` and ``fps``
    (``batch * 1000 / median_ms``). Percentiles interpolate linearly between order statistics
    (numpy's default), so one run gives median = p90 = min and IQR 0.

    Raises :class:`ProfilingError` for an empty list or a time that is not a finite positive number:
    a zero or negative time means the clock or the parser is wrong, not that the model is fast.
    """
    if batch < 1:
        raise ProfilingError(f"summarize_times: batch must be >= 1, got {batch}")
    values = [float(t) for t in times_ms]
    if not values:
        raise ProfilingError("summarize_times: no timed runs to summarise (times_ms is empty)")
    bad = [t for t in values if not math.isfinite(t) or t <= 0.0]
    if bad:
        raise ProfilingError(
            f"summarize_times: {len(bad)} of {len(values)} times are not finite positive milliseconds "
            f"(first: {bad[0]!r})"
        )
    arr = np.asarray(values, dtype=np.float64)
    p25, median, p75, p90 = np.percentile(arr, [25.0, 50.0, 75.0, 90.0])
    return {
        "median_ms": float(median),
        "p90_ms": float(p90),
        "iqr_ms": float(p75 - p25),
        "mean_ms": float(arr.mean()),
        "min_ms": float(arr.min()),
        "fps": float(batch * 1000.0 / median),
    }


def speedup_interval(
    baseline_ms: Sequence[float] | Sequence[Sequence[float]],
    variant_ms: Sequence[float] | Sequence[Sequence[float]],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``median(baseline) / median(variant)`` over paired rounds.

    Entry ``i`` of both lists must come from the same alternating round (as
    :func:`profiling._timing.time_alternating` records them): one time per round, or a row of the
    round's timed runs. Rounds, not single runs, are resampled: a load spike that slows one round
    slows both members of the pair, and the interval keeps that pairing. Deterministic for a given
    ``seed``.
    """
    base = np.asarray(baseline_ms, dtype=np.float64)
    var = np.asarray(variant_ms, dtype=np.float64)
    if base.shape != var.shape or base.ndim not in (1, 2) or base.size == 0:
        raise ProfilingError(
            f"speedup_interval: needs two equally shaped, non-empty lists of paired rounds, got {base.shape} and "
            f"{var.shape}"
        )
    if not 0.0 < confidence < 1.0 or resamples < 1:
        raise ProfilingError(
            f"speedup_interval: needs confidence in (0, 1) and resamples >= 1, got {confidence} and {resamples}"
        )
    if base.ndim == 1:  # one time per round
        base, var = base[:, None], var[:, None]
    rounds = base.shape[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, rounds, size=(resamples, rounds))
    ratios = np.median(base[idx].reshape(resamples, -1), axis=1) / np.median(var[idx].reshape(resamples, -1), axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return float(low), float(high)


def median_interval(
    times_ms: Sequence[float] | Sequence[Sequence[float]],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of one model's median latency, resampling whole rounds.

    ``times_ms``: one time per round, or a row of the round's timed runs (as for
    :func:`speedup_interval`, whose resampling this shares, so the report's error bar of a model
    and its speed-up interval rest on the same rounds). Deterministic for a given ``seed``.
    """
    rows = np.asarray(times_ms, dtype=np.float64)
    if rows.ndim not in (1, 2) or rows.size == 0:
        raise ProfilingError(f"median_interval: needs a non-empty list of rounds, got shape {rows.shape}")
    if rows.ndim == 1:
        rows = rows[:, None]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, rows.shape[0], size=(resamples, rows.shape[0]))
    medians = np.median(rows[idx].reshape(resamples, -1), axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(medians, [tail, 100.0 - tail])
    return float(low), float(high)
