"""What one one-shot search run needs: :class:`SupernetSearchConfig`, made of the parts the multi-trial
search uses (:mod:`search_spaces._config`) where they fit, and two of its own.

==================================  =====================================================================
``SupernetSearchConfig.study``       :class:`StudyOptions`: how many evaluated subnets, where it is stored
``SupernetSearchConfig.objectives``  :class:`ObjectiveOptions`: what is optimised and the hard limits
``SupernetSearchConfig.evaluation``  :class:`SubnetEvaluation`: the data, BatchNorm recalibration, validation
``SupernetSearchConfig.profiling``   :class:`ProfilingOptions`: where and how latency is measured
``SupernetSearchConfig.sampling``    :class:`SubnetSampling`: the sampler
``SupernetSearchConfig.workers``     :class:`WorkerOptions`: heartbeats, failure limits, progress display
==================================  =====================================================================

Defaults that differ from the multi-trial search's (a subnet costs seconds, not minutes: more of
them, a larger NSGA-II population, fewer timed runs each) are in :data:`SUPERNET_DEFAULTS`; the
CLI reads them with :meth:`SupernetSearchConfig.default`. Light, like ``_config``: no torch or
Optuna at import (``supernet search --help`` reads these defaults).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtseg_core import ConfigError, Constraints, Objective
from search_spaces._config import (
    STORED,
    ObjectiveOptions,
    ProfilingOptions,
    StudyOptions,
    WorkerOptions,
    check_parts,
    check_sampler,
    parts_from_options,
)


@dataclass(frozen=True)
class SubnetEvaluation:
    """How each subnet is judged: ``data`` and ``size`` (None: the supernet's training data and size);
    its BatchNorm statistics recalibrated on ``bn_batches`` fixed training batches, then evaluated on
    the validation split (``val_batches``: a cap on its batches; None: all)."""

    data: str | None = None
    size: int | None = None
    bn_batches: int = 4
    val_batches: int | None = None

    def __post_init__(self) -> None:
        value = self.bn_batches
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"--bn-batches: must be an integer >= 1, got {value!r}")
        value = self.val_batches
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"--val-batches: must be an integer >= 1, or None for all, got {value!r}")


@dataclass(frozen=True)
class SubnetSampling:
    """``sampler`` (one of :data:`search_spaces.SAMPLERS`) and ``population_size`` (NSGA-II)."""

    sampler: str = "nsga2"
    population_size: int = 8

    def __post_init__(self) -> None:
        check_sampler(self.sampler, self.population_size)


_PARTS: dict[str, type] = {
    "study": StudyOptions,
    "objectives": ObjectiveOptions,
    "evaluation": SubnetEvaluation,
    "profiling": ProfilingOptions,
    "sampling": SubnetSampling,
    "workers": WorkerOptions,
}
SUPERNET_DEFAULTS: dict[str, dict[str, Any]] = {
    "study": {"trials": 200},
    "sampling": {"population_size": 16},
    "profiling": {"latency_warmup": 3, "latency_runs": 10},
}


def _part(name: str):
    return lambda: _PARTS[name](**SUPERNET_DEFAULTS.get(name, {}))


@dataclass(frozen=True)
class SupernetSearchConfig:
    """One supernet search (see the module docstring). ``study_dir`` and ``supernet`` are required."""

    study_dir: str | Path
    supernet: str | Path
    seed: int = 0
    study: StudyOptions = field(default_factory=_part("study"))
    objectives: ObjectiveOptions = field(default_factory=_part("objectives"))
    evaluation: SubnetEvaluation = field(default_factory=_part("evaluation"))
    profiling: ProfilingOptions = field(default_factory=_part("profiling"))
    sampling: SubnetSampling = field(default_factory=_part("sampling"))
    workers: WorkerOptions = field(default_factory=_part("workers"))

    def __post_init__(self) -> None:
        check_parts(self, _PARTS)
        if self.study.budget_epochs not in (None, STORED):
            raise ConfigError(
                f"budget_epochs: a supernet search trains nothing, so an epoch budget means nothing here, "
                f"got {self.study.budget_epochs!r}"
            )

    @classmethod
    def from_options(cls, study_dir: str | Path, supernet: str | Path, *, seed: int = 0, **options: Any):
        """A config from flat options routed to the parts (``trials=``, ``target=``, ``bn_batches=`` ...),
        with this strategy's defaults for the rest. Unknown names raise TypeError."""
        parts = parts_from_options("SupernetSearchConfig", _PARTS, options, defaults=SUPERNET_DEFAULTS)
        return cls(study_dir=study_dir, supernet=supernet, seed=seed, **parts)

    @staticmethod
    def default(part: str, name: str) -> Any:
        """The default of field ``name`` of part ``part``, without building the part (for the CLI)."""
        if name in SUPERNET_DEFAULTS.get(part, {}):
            return SUPERNET_DEFAULTS[part][name]
        default = {f.name: f.default for f in dataclasses.fields(_PARTS[part])}[name]
        if default is dataclasses.MISSING:
            raise KeyError(f"{part}.{name} has no plain default")
        return default

    def parsed_objectives(self) -> tuple[Objective, ...]:
        return self.objectives.parsed()

    def constraints(self) -> Constraints:
        return self.objectives.constraints()

    def resolved_study_dir(self) -> Path:
        return Path(self.study_dir).expanduser().resolve()

    def resolved_study_name(self) -> str:
        return self.study.study_name or self.resolved_study_dir().name
