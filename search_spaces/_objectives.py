"""What a search optimises and what it must satisfy: objectives, constraints, feasibility and the front.

Objective names on the command line are short (``dice``, ``delta_aop``, ``latency``, ``params``,
``macs``); inside a study (Optuna metric names, ``study.json``, ``history.csv``) each objective
is called by its :class:`common.CandidateRecord` field (``dice``, ``delta_aop_deg``,
``latency_ms``, ``params``, ``macs``), so reports read candidates and settings without a
translation table.

Constraints are stored with ``trial.set_constraint(name, value)`` (Optuna >= 5; the samplers
read them) as *relative* violations, so that a sampler adding violations up does not let the
parameter count (millions) swamp the latency (milliseconds): ``value <= 0`` is feasible.

=================  ==========================================  =====================
constraint         value stored                                feasible when
=================  ==========================================  =====================
``min_fps``        ``(min_fps - fps) / min_fps``               fps >= min_fps
``max_latency_ms`` ``(latency_ms - max) / max``                latency_ms <= max
``max_params``     ``(params - max) / max``                    params <= max
=================  ==========================================  =====================

Optuna's ``study.best_trials`` ignores feasibility; :func:`pareto_indices` is used on feasible
trials only, everywhere the suite reports a "best".
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rtseg_core import ConfigError


@dataclass(frozen=True)
class Objective:
    """One objective: its command-line ``name``, the record ``field`` it reads, and its direction.

    ``cost`` objectives depend on the architecture only and are known before training (the
    early-stopping rule compares them); the others come from the validation split.
    """

    name: str
    field: str
    direction: str  # "maximize" | "minimize"
    cost: bool
    description: str


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("dice", "dice", "maximize", False, "mean foreground Dice (PS, FH) on the validation split"),
        Objective("delta_aop", "delta_aop_deg", "minimize", False, "mean |dAoP| in degrees on the validation split"),
        Objective("latency", "latency_ms", "minimize", True, "median latency of one image on the target, ms"),
        Objective("params", "params", "minimize", True, "trainable parameters (sum of p.numel())"),
        Objective("macs", "macs", "minimize", True, "multiply-accumulates of one forward pass (fvcore)"),
    )
}
DEFAULT_OBJECTIVES = ("dice", "latency")
# The value a delta_aop objective takes when no validation image allows an AoP (Optuna refuses NaN):
# the largest possible angle error, so such a trial is never preferred.
DELTA_AOP_UNDEFINED = 180.0


def parse_objectives(names: str | Iterable[str]) -> tuple[Objective, ...]:
    """``"dice,latency"`` or ``["dice", "latency_ms"]`` -> objectives; record field names are accepted too."""
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n).strip() for n in names]
    items = [n for n in items if n]
    if not items:
        raise ConfigError(f"--objectives: give at least one of {', '.join(OBJECTIVES)} (e.g. dice,latency)")
    by_field = {o.field: o for o in OBJECTIVES.values()}
    out: list[Objective] = []
    for name in items:
        obj = OBJECTIVES.get(name) or by_field.get(name)
        if obj is None:
            hint = difflib.get_close_matches(name, [*OBJECTIVES, *by_field], n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"--objectives: unknown objective {name!r}{more}; choose from {', '.join(OBJECTIVES)}")
        if obj in out:
            raise ConfigError(f"--objectives: {obj.name!r} is listed twice in {names!r}")
        out.append(obj)
    return tuple(out)


@dataclass(frozen=True)
class Constraints:
    """Hard limits a trial must meet to be *feasible*. ``None`` (or <= 0 on the command line) = no limit."""

    min_fps: float | None = None
    max_latency_ms: float | None = None
    max_params: int | None = None

    def __post_init__(self) -> None:
        for name in ("min_fps", "max_latency_ms", "max_params"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or not value > 0):
                raise ConfigError(f"--{name.replace('_', '-')}: must be a positive number, got {value!r}")

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.min_fps, self.max_latency_ms, self.max_params))

    def to_dict(self) -> dict[str, float | None]:
        return {"min_fps": self.min_fps, "max_latency_ms": self.max_latency_ms, "max_params": self.max_params}

    def params_violation(self, params: int) -> float | None:
        """The ``max_params`` constraint value for ``params`` (None when there is no such limit)."""
        if self.max_params is None:
            return None
        return (params - self.max_params) / self.max_params

    def values(self, *, params: int, latency_ms: float | None, fps: float | None) -> dict[str, float]:
        """The constraint values of one trial (see the module docstring); empty when there are no limits.

        A missing latency counts as infinitely slow for the latency limits (the trial cannot show it meets them).
        """
        out: dict[str, float] = {}
        if self.min_fps is not None:
            out["min_fps"] = 1.0 if fps is None or not math.isfinite(fps) else (self.min_fps - fps) / self.min_fps
        if self.max_latency_ms is not None:
            bad = latency_ms is None or not math.isfinite(latency_ms)
            out["max_latency_ms"] = 1.0 if bad else (latency_ms - self.max_latency_ms) / self.max_latency_ms
        if self.max_params is not None:
            out["max_params"] = (params - self.max_params) / self.max_params
        return out

    def describe(self) -> str:
        parts = []
        if self.min_fps is not None:
            parts.append(f"fps >= {self.min_fps:g}")
        if self.max_latency_ms is not None:
            parts.append(f"latency <= {self.max_latency_ms:g} ms")
        if self.max_params is not None:
            parts.append(f"params <= {self.max_params:,}")
        return ", ".join(parts) or "none"


def is_feasible(constraint_values: Mapping[str, float]) -> bool:
    """Optuna's convention: feasible when every constraint value is <= 0 (no constraints: feasible)."""
    return all(v <= 0 for v in constraint_values.values())


def violations(constraint_values: Mapping[str, float]) -> list[str]:
    """The names of the constraints a trial violates."""
    return [k for k, v in constraint_values.items() if v > 0]


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for x, y, d in zip(a, b, directions):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better


def pareto_indices(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points among ``values`` (identical points are all kept)."""
    return [
        i for i, v in enumerate(values) if not any(dominates(w, v, directions) for j, w in enumerate(values) if j != i)
    ]
