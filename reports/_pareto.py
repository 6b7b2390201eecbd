"""Pareto fronts with explicit directions: non-dominated sorting and the front of a candidate table.

A point ``a`` dominates ``b`` when ``a`` is at least as good in every objective and strictly better
in one (ties in every objective dominate neither way, so duplicates share a rank).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from reports._load import check_objectives
from rtseg_core import ConfigError


class FrontInfo(NamedTuple):
    """The rows of a candidate table split by their place relative to the feasible Pareto front.

    Only rows that are feasible (``feasible == True``) and have a value for every objective take
    part in the non-dominated sorting. ``front`` and ``dominated`` carry an extra ``rank`` column
    (0 on the front, k for the k-th front after peeling); ``front`` is sorted best first by the
    first objective (ties by the next ones), ``dominated`` by rank, then the same way.
    """

    front: pd.DataFrame  # feasible, complete and non-dominated
    dominated: pd.DataFrame  # feasible, complete, dominated by some feasible row
    infeasible: pd.DataFrame  # feasible == False (with or without objective values)
    missing: pd.DataFrame  # feasible but lacking a value for at least one objective
    objectives: tuple[tuple[str, str], ...]

    @property
    def front_names(self) -> tuple[str, ...]:
        return tuple(self.front["name"]) if "name" in self.front.columns else ()

    @property
    def dominated_names(self) -> tuple[str, ...]:
        return tuple(self.dominated["name"]) if "name" in self.dominated.columns else ()

    @property
    def infeasible_names(self) -> tuple[str, ...]:
        return tuple(self.infeasible["name"]) if "name" in self.infeasible.columns else ()

    @property
    def is_empty(self) -> bool:
        return self.front.empty and self.dominated.empty and self.infeasible.empty and self.missing.empty


def as_minimization(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """``values`` (n, m) with every maximized column negated, so that smaller is better everywhere."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ConfigError(f"objective values must be a 2-D array (points x objectives), got shape {values.shape}")
    if len(directions) != values.shape[1]:
        raise ConfigError(
            f"{values.shape[1]} objective column(s) but {len(directions)} direction(s) {list(directions)}"
        )
    signs = np.array([_sign(d) for d in directions])
    return values * signs


def dominance_matrix(minimized: np.ndarray) -> np.ndarray:
    """``D[i, j]`` is True when row ``j`` dominates row ``i`` (all objectives minimized)."""
    v = np.asarray(minimized, dtype=float)
    le = (v[None, :, :] <= v[:, None, :]).all(axis=-1)
    lt = (v[None, :, :] < v[:, None, :]).any(axis=-1)
    return le & lt


def nondominated_ranks(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Non-dominated sorting: rank 0 for the Pareto front, k for the front left after removing ranks < k.

    ``values`` is (n, m), one column per objective in the order of ``directions``
    (``"minimize"``/``"maximize"``). Values must be finite: filter incomplete rows first.
    Returns an int array of length n.
    """
    v = as_minimization(values, directions)
    if not np.isfinite(v).all():
        bad = int(np.flatnonzero(~np.isfinite(v).all(axis=1))[0])
        raise ConfigError(f"objective values must be finite for non-dominated sorting; row {bad} is {values[bad]!r}")
    n = v.shape[0]
    ranks = np.full(n, -1, dtype=int)
    if n == 0:
        return ranks
    dominated_by = dominance_matrix(v)
    remaining = np.ones(n, dtype=bool)
    rank = 0
    while remaining.any():
        current = remaining & ~dominated_by[:, remaining].any(axis=1)
        ranks[current] = rank
        remaining &= ~current
        rank += 1
    return ranks


def nondominated_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (the Pareto front)."""
    v = as_minimization(values, directions)
    if v.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return ~dominance_matrix(v).any(axis=1)


def pareto_front(df: pd.DataFrame, objectives: Iterable[tuple[str, str]]) -> FrontInfo:
    """The feasible Pareto front of ``df`` for ``objectives``, e.g. ``[("dice", "maximize"), ("fps", "maximize")]``.

    ``df`` is a candidate table (:func:`reports.load_candidates`); a missing ``feasible`` column means
    all rows are feasible. The input is not modified. Raises :class:`ConfigError` naming an
    objective that is not a column.
    """
    objectives = check_objectives(objectives)
    names = [n for n, _ in objectives]
    directions = [d for _, d in objectives]
    absent = [n for n in names if n not in df.columns]
    if absent:
        raise ConfigError(
            f"objective(s) {absent} are not columns of the candidate table; available: {list(df.columns)}"
        )
    feasible = (
        df["feasible"].fillna(False).astype(bool) if "feasible" in df.columns else pd.Series(True, index=df.index)
    )
    values = objective_values(df, names)
    complete = np.isfinite(values).all(axis=1)
    usable = feasible.to_numpy() & complete

    ranks = nondominated_ranks(values[usable], directions)
    ranked = df[usable].copy()
    ranked["rank"] = ranks
    sort_cols, ascending = _sort_order(objectives)
    front = ranked[ranked["rank"] == 0].sort_values(sort_cols, ascending=ascending, kind="stable")
    dominated = ranked[ranked["rank"] > 0].sort_values(
        ["rank", *sort_cols], ascending=[True, *ascending], kind="stable"
    )
    return FrontInfo(
        front=front,
        dominated=dominated,
        infeasible=df[~feasible.to_numpy()].copy(),
        missing=df[feasible.to_numpy() & ~complete].copy(),
        objectives=objectives,
    )


def objective_values(df: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """``df[names]`` as a float array (n, m) with NaN for missing values (nullable ints included)."""
    cols = [
        pd.to_numeric(df[n], errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan) for n in names
    ]
    if not cols:
        return np.zeros((len(df), 0))
    return np.stack(cols, axis=1) if len(df) else np.zeros((0, len(names)))


def attainment_line(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """The staircase through a 2-D front: the boundary of the region its points dominate.

    ``points`` (n, 2) are front points in their own units; the result (2n-1, 2) runs from the best
    point in the first objective to the best in the second, with a corner between neighbours, so a
    line through it shows exactly which trade-offs the front guarantees.
    """
    pts = np.asarray(points, dtype=float)
    if pts.shape[0] == 0:
        return np.zeros((0, 2))
    signs = np.array([_sign(d) for d in directions])
    v = pts * signs
    v = v[np.lexsort((v[:, 1], v[:, 0]))]
    corners = [v[0]]
    for prev, cur in zip(v[:-1], v[1:]):
        corners.append(np.array([cur[0], prev[1]]))
        corners.append(cur)
    return np.array(corners) * signs


def _sort_order(objectives: tuple[tuple[str, str], ...]) -> tuple[list[str], list[bool]]:
    return [n for n, _ in objectives], [d == "minimize" for _, d in objectives]


def _sign(direction: str) -> float:
    if direction == "minimize":
        return 1.0
    if direction == "maximize":
        return -1.0
    raise ConfigError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
