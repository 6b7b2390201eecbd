"""Non-dominated sorting with explicit directions: the one Pareto implementation of the suite.

The search (its feasible front and early-stopping references), compression (which trials to
compress) and the reports (fronts, ranks, hypervolume) all call these functions.

A point ``a`` dominates ``b`` when ``a`` is at least as good in every objective and strictly better
in one (ties in every objective dominate neither way, so duplicates share a rank).

Kept out of ``rtseg_core/__init__.py``: it needs numpy, and ``rtseg-nas --help`` imports
``rtseg_core`` for its errors only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rtseg_core._errors import ConfigError


def as_minimization(values: np.ndarray | Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """``values`` (n, m) with every maximized column negated, so that smaller is better everywhere."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        if values.size == 0:  # an empty list of points: (0, m)
            return np.zeros((0, len(directions)))
        raise ConfigError(f"objective values must be a 2-D array (points x objectives), got shape {values.shape}")
    if len(directions) != values.shape[1]:
        raise ConfigError(
            f"{values.shape[1]} objective column(s) but {len(directions)} direction(s) {list(directions)}"
        )
    signs = np.array([direction_sign(d) for d in directions])
    return values * signs


def dominance_matrix(minimized: np.ndarray) -> np.ndarray:
    """``D[i, j]`` is True when row ``j`` dominates row ``i`` (all objectives minimized)."""
    v = np.asarray(minimized, dtype=float)
    le = (v[None, :, :] <= v[:, None, :]).all(axis=-1)
    lt = (v[None, :, :] < v[:, None, :]).any(axis=-1)
    return le & lt


def nondominated_ranks(values: np.ndarray | Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """Non-dominated sorting: rank 0 for the Pareto front, k for the front left after removing ranks < k.

    ``values`` is (n, m), one column per objective in the order of ``directions``
    (``"minimize"``/``"maximize"``). Values must be finite: filter incomplete rows first.
    Returns an int array of length n.
    """
    v = as_minimization(values, directions)
    if not np.isfinite(v).all():
        bad = int(np.flatnonzero(~np.isfinite(v).all(axis=1))[0])
        raise ConfigError(
            f"objective values must be finite for non-dominated sorting; row {bad} is {np.asarray(values)[bad]!r}"
        )
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


def nondominated_mask(values: np.ndarray | Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (the Pareto front)."""
    v = as_minimization(values, directions)
    if v.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return ~dominance_matrix(v).any(axis=1)


def pareto_indices(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points among ``values``, in input order (identical points are all kept)."""
    return [int(i) for i in np.flatnonzero(nondominated_mask(values, directions))]


def direction_sign(direction: str) -> float:
    """+1 for ``minimize``, -1 for ``maximize`` (multiply to make smaller better)."""
    if direction == "minimize":
        return 1.0
    if direction == "maximize":
        return -1.0
    raise ConfigError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
