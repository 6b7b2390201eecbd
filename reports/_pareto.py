"""The Pareto front of a candidate table, split into front / dominated / infeasible / missing rows.

The sort itself is the suite's one implementation, :mod:`rtseg_core._pareto` (re-exported here
for the report's users); this module applies it to tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from rtseg_core import (
    ConfigError,
    as_minimization,
    check_objectives,
    direction_sign,
    dominance_matrix,
    nondominated_mask,
    nondominated_ranks,
)

__all__ = [
    "FrontInfo",
    "as_minimization",
    "attainment_line",
    "dominance_matrix",
    "nondominated_mask",
    "nondominated_ranks",
    "objective_values",
    "pareto_front",
]


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
    signs = np.array([direction_sign(d) for d in directions])
    v = pts * signs
    v = v[np.lexsort((v[:, 1], v[:, 0]))]
    corners = [v[0]]
    for prev, cur in zip(v[:-1], v[1:]):
        corners.append(np.array([cur[0], prev[1]]))
        corners.append(cur)
    return np.array(corners) * signs


def _sort_order(objectives: tuple[tuple[str, str], ...]) -> tuple[list[str], list[bool]]:
    return [n for n, _ in objectives], [d == "minimize" for _, d in objectives]
