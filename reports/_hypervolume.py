"""Hypervolume: the size of the objective-space region a set of points dominates, up to a reference point.

Our own implementation (Optuna has no public one): an exact sweep in 2-D and exact slicing
(HSO, "hypervolume by slicing objectives") in more dimensions, which is fine for the few hundred
front points a study has. Maximized objectives are negated, so every computation minimizes.

Reference point: unless one is given, :func:`default_reference` takes, per objective, the worst
value observed and moves it 10 % of the observed range further towards "worse" (or 10 % of
``|worst|``, or 1, when all values are equal). The padding gives the extreme points of the front a
non-zero share. Hypervolumes are only comparable under the same reference point, so
:func:`hypervolume_history` fixes one for the whole history and reports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from rtseg_core import ConfigError, as_minimization, check_objectives, nondominated_mask

DEFAULT_PAD = 0.1


def default_reference(points: np.ndarray, directions: Sequence[str], *, pad: float = DEFAULT_PAD) -> np.ndarray:
    """Worst observed value per objective, moved ``pad`` x (max - min) further towards worse.

    Returned in the objectives' own units and directions (a maximized objective's reference lies
    below its smallest value). With zero range the padding is ``pad * |worst|``, or 1 if that is 0.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[0] == 0:
        raise ConfigError(f"default_reference needs at least one point (shape (n, m)), got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ConfigError("default_reference: points must be finite (drop rows with missing objective values)")
    v = as_minimization(pts, directions)
    worst = v.max(axis=0)
    span = worst - v.min(axis=0)
    margin = pad * span
    flat = span == 0
    margin[flat] = np.where(worst[flat] != 0, pad * np.abs(worst[flat]), 1.0)
    signs = as_minimization(np.ones((1, v.shape[1])), directions)[0]
    return (worst + margin) * signs


def hypervolume(
    points: np.ndarray,
    reference: Sequence[float] | np.ndarray | None = None,
    directions: Sequence[str] | None = None,
) -> float:
    """Exact hypervolume dominated by ``points`` (n, m) and bounded by ``reference`` (m,).

    ``directions`` gives ``"minimize"``/``"maximize"`` per column (all minimized when None);
    ``reference`` is in the same units and directions as the points (None: :func:`default_reference`).
    Points that are not strictly better than the reference in every objective add nothing.
    An empty set has hypervolume 0.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim == 1 and pts.size == 0:
        pts = pts.reshape(0, 0 if reference is None else len(reference))
    if pts.ndim != 2:
        raise ConfigError(f"hypervolume: points must be a 2-D array (points x objectives), got shape {pts.shape}")
    m = pts.shape[1]
    directions = ["minimize"] * m if directions is None else list(directions)
    if len(directions) != m:
        raise ConfigError(f"hypervolume: {m} objective column(s) but {len(directions)} direction(s) {directions}")
    if reference is None:
        if pts.shape[0] == 0:
            return 0.0
        reference = default_reference(pts, directions)
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape != (m,):
        raise ConfigError(f"hypervolume: reference point needs {m} value(s), got {ref.tolist()}")
    if not np.isfinite(ref).all():
        raise ConfigError(f"hypervolume: reference point must be finite, got {ref.tolist()}")
    if pts.shape[0] == 0:
        return 0.0
    if not np.isfinite(pts).all():
        raise ConfigError("hypervolume: points must be finite (drop rows with missing objective values)")
    v = as_minimization(pts, directions)
    r = as_minimization(ref[None, :], directions)[0]
    v = v[(v < r).all(axis=1)]
    if v.shape[0] == 0:
        return 0.0
    return float(_hv_min(_front(v), r))


def _front(v: np.ndarray) -> np.ndarray:
    v = np.unique(v, axis=0)
    return v[nondominated_mask(v, ["minimize"] * v.shape[1])]


def _hv_min(v: np.ndarray, r: np.ndarray) -> float:
    """Hypervolume of mutually non-dominated points ``v`` (all < ``r``), every objective minimized."""
    m = v.shape[1]
    if m == 1:
        return float(r[0] - v[:, 0].min())
    if m == 2:
        return _hv2(v, r)
    # Slice along the last objective: between consecutive values z_i < z_{i+1} the cross-section is
    # the (m-1)-D region dominated by every point with last coordinate <= z_i.
    order = np.argsort(v[:, -1], kind="stable")
    v = v[order]
    bounds = np.append(v[:, -1], r[-1])
    total = 0.0
    for i in range(v.shape[0]):
        depth = bounds[i + 1] - bounds[i]
        if depth <= 0:
            continue
        total += depth * _hv_min(_front(v[: i + 1, :-1]), r[:-1])
    return total


def _hv2(v: np.ndarray, r: np.ndarray) -> float:
    # Sorted by the first objective, a non-dominated 2-D set is strictly decreasing in the second:
    # each point adds the rectangle between its own second value and its left neighbour's.
    v = v[np.lexsort((v[:, 1], v[:, 0]))]
    area = 0.0
    prev_y = r[1]
    for x, y in v:
        if y < prev_y:
            area += (r[0] - x) * (prev_y - y)
            prev_y = y
    return area


class HypervolumeHistory(NamedTuple):
    """Hypervolume of the feasible trials seen so far, after each trial, under one fixed reference."""

    numbers: tuple[int, ...]  # trial numbers, in order
    values: tuple[float, ...]  # hypervolume after that trial (0 until a feasible trial exists)
    reference: tuple[float, ...]  # in objective units and directions; () when no feasible trial exists
    objectives: tuple[tuple[str, str], ...]
    source: str  # where the trials came from ("history.csv" or "trial candidates")

    @property
    def is_empty(self) -> bool:
        return not self.numbers


def hypervolume_history(
    history: pd.DataFrame,
    objectives: Iterable[tuple[str, str]],
    *,
    reference: Sequence[float] | None = None,
    source: str = "",
) -> HypervolumeHistory:
    """Hypervolume after each COMPLETE trial of ``history`` (see :func:`reports.load_history`).

    Only COMPLETE, feasible trials with every objective value count. Without ``reference`` the
    default rule (:func:`default_reference`) is applied once to all counted trials, so the curve
    never decreases.
    """
    objectives = check_objectives(objectives)
    names = [n for n, _ in objectives]
    directions = [d for _, d in objectives]
    absent = [n for n in [*names, "number"] if n not in history.columns]
    if absent:
        raise ConfigError(f"history: missing column(s) {absent}; found {list(history.columns)}")
    rows = history.sort_values("number", kind="stable")
    if "state" in rows.columns:
        rows = rows[rows["state"].astype(str) == "COMPLETE"]
    values = rows[names].to_numpy(dtype=float) if len(rows) else np.zeros((0, len(names)))
    feasible = rows["feasible"].astype(bool).to_numpy() if "feasible" in rows.columns else np.ones(len(rows), bool)
    counted = feasible & np.isfinite(values).all(axis=1)
    if reference is None:
        ref = default_reference(values[counted], directions) if counted.any() else None
    else:
        ref = np.asarray(reference, dtype=float)
    out: list[float] = []
    front = np.zeros((0, len(names)))
    current = 0.0
    for value, count in zip(values, counted):
        if count:
            candidate = np.vstack([front, value])
            keep = nondominated_mask(candidate, directions)
            if keep[-1]:  # only a new front point can change the hypervolume
                front = candidate[keep]
                current = hypervolume(front, ref, directions)
        out.append(current)
    return HypervolumeHistory(
        numbers=tuple(int(n) for n in rows["number"]),
        values=tuple(out),
        reference=() if ref is None else tuple(float(x) for x in ref),
        objectives=objectives,
        source=source,
    )
