"""What a study optimises and what it must satisfy: objectives, constraints and feasibility.

One definition for the search (which sets them), compression (which re-checks a variant) and the
reports (which re-check every candidate), so the three cannot disagree about what "feasible" or
"the default objectives" mean.

Objective names on the command line are short (``dice``, ``delta_aop``, ``latency``, ``params``,
``macs``); inside a study (Optuna metric names, ``study.json``, ``history.csv``) each objective
is called by its :class:`CandidateRecord` field (``dice``, ``delta_aop_deg``, ``latency_ms``,
``params``, ``macs``), so reports read candidates and settings without a translation table.

Constraint values are *relative* violations (Optuna's ``trial.set_constraint`` convention, read by
its samplers), so that a sampler adding violations up does not let the parameter count
(millions) swamp the latency (milliseconds): ``value <= 0`` is feasible.

=================  ==========================================  =====================
constraint         value                                       feasible when
=================  ==========================================  =====================
``min_fps``        ``(min_fps - fps) / min_fps``               fps >= min_fps
``max_latency_ms`` ``(latency_ms - max) / max``                latency_ms <= max
``max_params``     ``(params - max) / max``                    params <= max
=================  ==========================================  =====================

A value that is missing (``None`` or NaN) cannot show that it meets a limit: it violates it (1.0).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rtseg_core._errors import ConfigError

#: The input side (px) RTSeg-Net is deployed at (the paper's 256x256 on the Jetson Nano): the size a
#: latency limit such as ``--min-fps 24`` is judged at by default, in ``search`` and ``validate`` alike.
DEPLOYMENT_SIZE = 256

DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Objective:
    """One objective: its command-line ``name``, the record ``field`` it reads, and its direction.

    ``cost`` objectives depend on the architecture only and are known before training (the
    search's early-stopping rule compares them); the others come from the validation split.
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
# What a study is judged on when nobody says otherwise (the search's --objectives default, and the
# reports' reading of a study without study.json).
DEFAULT_OBJECTIVES: tuple[str, ...] = ("dice", "latency")


def default_objective_pairs() -> tuple[tuple[str, str], ...]:
    """:data:`DEFAULT_OBJECTIVES` as ``((field, direction), ...)``, the form ``study.json`` stores."""
    return tuple((OBJECTIVES[n].field, OBJECTIVES[n].direction) for n in DEFAULT_OBJECTIVES)


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


def check_objectives(objectives: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    """Validate ``[(name, "minimize"|"maximize"), ...]`` and return it as a tuple of pairs."""
    out = []
    for item in objectives:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ConfigError(f"each objective must be a [name, direction] pair, got {item!r}")
        name, direction = item
        if direction not in DIRECTIONS:
            raise ConfigError(f"objective {name!r}: direction must be 'minimize' or 'maximize', got {direction!r}")
        out.append((str(name), str(direction)))
    if not out:
        raise ConfigError("at least one objective is needed, e.g. [['dice', 'maximize'], ['latency_ms', 'minimize']]")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"objective names must be distinct, got {names}")
    return tuple(out)


CONSTRAINT_KEYS = ("min_fps", "max_latency_ms", "max_params")
LATENCY_CONSTRAINTS = ("min_fps", "max_latency_ms")


@dataclass(frozen=True)
class Constraints:
    """Hard limits a model must meet to be *feasible*. ``None`` = no limit."""

    min_fps: float | None = None
    max_latency_ms: float | None = None
    max_params: int | None = None

    def __post_init__(self) -> None:
        for name in CONSTRAINT_KEYS:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or not value > 0):
                raise ConfigError(f"--{name.replace('_', '-')}: must be a positive number, got {value!r}")

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "study.json") -> Constraints:
        """The ``constraints`` object of ``study.json`` (``null`` or absent keys: no limit); errors name ``source``."""
        raw = raw or {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{source}: 'constraints' must be an object with {list(CONSTRAINT_KEYS)}, got {raw!r}")
        values: dict[str, Any] = {}
        for key in CONSTRAINT_KEYS:
            value = raw.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                raise ConfigError(f"{source}: constraints.{key} must be a positive number or null, got {value!r}")
            values[key] = value
        return cls(**values)

    @property
    def active(self) -> bool:
        return any(getattr(self, k) is not None for k in CONSTRAINT_KEYS)

    def to_dict(self) -> dict[str, float | None]:
        return {k: getattr(self, k) for k in CONSTRAINT_KEYS}

    def params_only(self) -> Constraints:
        """These limits without the latency ones (for a model timed somewhere the limits do not speak of)."""
        return Constraints(max_params=self.max_params)

    def params_violation(self, params: int) -> float | None:
        """The ``max_params`` constraint value for ``params`` (None when there is no such limit)."""
        if self.max_params is None:
            return None
        return (params - self.max_params) / self.max_params

    def values(self, *, params: float | None, latency_ms: float | None, fps: float | None) -> dict[str, float]:
        """The constraint values of one model (see the module docstring); empty when there are no limits."""
        out: dict[str, float] = {}
        if self.min_fps is not None:
            out["min_fps"] = 1.0 if _missing(fps) else (self.min_fps - fps) / self.min_fps
        if self.max_latency_ms is not None:
            out["max_latency_ms"] = (
                1.0 if _missing(latency_ms) else (latency_ms - self.max_latency_ms) / self.max_latency_ms
            )
        if self.max_params is not None:
            out["max_params"] = 1.0 if _missing(params) else (params - self.max_params) / self.max_params
        return out

    def met_by(self, *, params: float | None, latency_ms: float | None, fps: float | None) -> bool:
        """Whether a model with these numbers meets every limit."""
        return is_feasible(self.values(params=params, latency_ms=latency_ms, fps=fps))

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
    """The names of the constraints a model violates."""
    return [k for k, v in constraint_values.items() if v > 0]


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(float(value))
