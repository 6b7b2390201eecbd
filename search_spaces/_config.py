"""What one search run needs: :class:`SearchConfig`, made of one small config per concern.

==========================  ==========================================================================
``SearchConfig.study``       :class:`StudyOptions`: how many finished trials (and epochs), where it is stored
``SearchConfig.objectives``  :class:`ObjectiveOptions`: what is optimised and the hard limits
``SearchConfig.training``    :class:`ProxyTraining`: the short training and validation of each trial
``SearchConfig.profiling``   :class:`ProfilingOptions`: where and how latency is measured
``SearchConfig.strategy``    :class:`StrategyOptions`: the sampler, the space, early stopping
``SearchConfig.workers``     :class:`WorkerOptions`: heartbeats, failure limits, progress display
==========================  ==========================================================================

``SearchConfig.seed`` seeds the sampler, the data split, training and profiling alike. Each
config checks its own fields and names the command-line option in its errors; the CLI takes
its defaults from these classes. :meth:`SearchConfig.from_options` builds one from flat keyword
arguments (``trials=``, ``size=``, ``sampler=`` ...), for scripts and tests.

This module stays light (no torch, Optuna or ONNX Runtime at import): ``rtseg-nas search --help``
reads its defaults from these classes and must answer at once. The few lower-level pieces a
config needs when it is *built* (the target names, ``TrainConfig``, the default search space, the
URL redaction) are imported inside the functions that use them, for that reason only.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtseg_core import (
    DEFAULT_OBJECTIVES,
    DEPLOYMENT_SIZE,
    MULTI_TRIAL,
    SUPERNET,
    ConfigError,
    Constraints,
    MultiTrialSettings,
    Objective,
    ProxyTrainingSettings,
    SearchError,
    StudySettings,
    check_threads,
    parse_objectives,
)
from search_spaces._early_stop import EarlyStopRule

if TYPE_CHECKING:
    from collections.abc import Callable

    from profiling import CostRecord, LatencyRecord, ProfileReport, SSHOptions
    from search_spaces._space import SearchSpace
    from segmentation import TrainConfig

SAMPLERS = ("nsga2", "tpe", "random")
# Settings that change what a trial's numbers mean: a resumed study must keep them. These are both
# strategies'; each adds its own tail (FIXED_TAIL), e.g. the proxy training or the supernet.
FIXED_SETTINGS = (
    "objectives",
    "constraints",
    "data",
    "size",
    "latency_size",
    "target",
    "precision",
    "threads",
    "space",
)
FIXED_TAIL = {
    MULTI_TRIAL: ("proxy_training",),  # multi-fidelity too: its rungs are in proxy_training
    SUPERNET: ("strategy", "supernet", "evaluation"),
}


def fixed_settings(strategy: str) -> tuple[str, ...]:
    """The settings a resumed study of ``strategy`` (``MULTI_TRIAL`` or ``SUPERNET``) must keep."""
    return (*FIXED_SETTINGS, *FIXED_TAIL[strategy])


class _Stored(enum.Enum):
    STORED = "stored"

    def __repr__(self) -> str:
        return "STORED"


STORED = _Stored.STORED
"""``StudyOptions.budget_epochs``'s default: the budget the study was stored with (none for a new study)."""


@dataclass(frozen=True)
class StudyOptions:
    """``trials``: the number of finished trials (COMPLETE or early-stopped) the study should hold
    when this run ends; ``storage``: an SQLAlchemy URL (None: ``STUDY_DIR/study.db``;
    ``postgresql://`` is rewritten to psycopg 3); ``study_name`` (None: the study folder's name);
    ``budget_epochs``: no new trial is proposed once the study's trials (every run and worker) have
    trained this many epochs, and ``trials`` then is an upper bound. None: no budget;
    :data:`STORED` (the default): the budget stored with the study, which a resumed run keeps
    unless it gives another (the log says which it uses), and none for a new study."""

    trials: int = 20
    storage: str | None = None
    study_name: str | None = None
    budget_epochs: int | None | _Stored = STORED

    def __post_init__(self) -> None:
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 0:
            raise ConfigError(f"--trials: must be an integer >= 0, got {self.trials!r}")
        b = self.budget_epochs
        if b is not None and b is not STORED and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
            raise ConfigError(
                f"--budget-epochs: must be an integer >= 1, None for no budget, or STORED for the study's, got {b!r}"
            )


@dataclass(frozen=True)
class ObjectiveOptions:
    """``names`` from ``dice``, ``delta_aop``, ``latency``, ``params``, ``macs`` (record field names
    are accepted too); ``min_fps``, ``max_latency_ms``, ``max_params``: a positive limit, or None for
    none (the command line's 0 means None there; here 0 is an error, not "no limit")."""

    names: tuple[str, ...] = DEFAULT_OBJECTIVES
    min_fps: float | None = None
    max_latency_ms: float | None = None
    max_params: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.names, str):
            object.__setattr__(self, "names", tuple(o.strip() for o in self.names.split(",") if o.strip()))
        else:
            object.__setattr__(self, "names", tuple(self.names))
        self.parsed()
        self.constraints()

    def parsed(self) -> tuple[Objective, ...]:
        return parse_objectives(self.names)

    def constraints(self) -> Constraints:
        return Constraints(min_fps=self.min_fps, max_latency_ms=self.max_latency_ms, max_params=self.max_params)


@dataclass(frozen=True)
class ProxyTraining:
    """The proxy training of every trial (``segmentation.train``) and its validation: ``data``,
    ``size``, ``epochs``, ``steps_per_epoch`` (None: the whole split), ``batch_size``, ``lr``,
    ``val_batches`` (None: all), ``frames``, ``device``; ``train_threads`` (torch threads for the
    whole run; None: the suite's thread policy, rtseg_core._threads: half the cores, at most 4)."""

    data: str = "synthetic"
    size: int = 96
    epochs: int = 4
    steps_per_epoch: int | None = 25
    batch_size: int = 8
    lr: float = 3e-3  # higher than full training's 1e-3: a proxy has few steps to show what it can learn
    val_batches: int | None = None
    frames: str = "ps+fh"
    device: str = "auto"
    train_threads: int | None = None
    # issue 11: multi-fidelity (MO-ASHA) rungs in epochs, () = fixed budget; the top rung sets ``epochs``.
    fidelity: tuple[int, ...] = ()
    eta: int = 3

    def __post_init__(self) -> None:
        if self.fidelity:
            object.__setattr__(self, "fidelity", tuple(self.fidelity))
            object.__setattr__(self, "epochs", self.fidelity_schedule().epochs)
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"--epochs: must be an integer >= 1, got {self.epochs!r}")
        if self.train_threads is not None:
            check_threads(self.train_threads, source="--train-threads")
        self.train_config(seed=0)  # validates size, epochs, batch size, lr

    def fidelity_schedule(self):
        """The multi-fidelity rungs (:class:`search_spaces._fidelity.FidelitySchedule`), or None."""
        from search_spaces._fidelity import FidelitySchedule  # light: rtseg_core and numpy only

        return FidelitySchedule(tuple(self.fidelity), self.eta) if self.fidelity else None

    def train_config(self, *, seed: int) -> TrainConfig:
        from segmentation import TrainConfig  # not at the top: see the module docstring

        return TrainConfig(
            data=self.data,
            size=self.size,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=seed,
            device=self.device,
            steps_per_epoch=self.steps_per_epoch,
            val_batches=self.val_batches,
            frames=self.frames,
        )


@dataclass(frozen=True)
class ProfilingOptions:
    """``target``: ``local`` (ONNX Runtime on this CPU, measured), ``ssh://user@host[:port]``
    (measured on the device with ``ssh_options``/``remote_backend``) or ``jetson-nano-estimate``
    (roofline estimate, labelled estimated); ``latency_size`` is the input side timed, by default
    the deployment size (``rtseg_core.DEPLOYMENT_SIZE``, where ``validate`` times too) so that a
    latency limit means the same in both; None: the training size; ``threads``, ``latency_warmup``,
    ``latency_runs``, ``precision``."""

    target: str = "local"
    latency_size: int | None = DEPLOYMENT_SIZE
    threads: int = 1
    latency_warmup: int = 5
    latency_runs: int = 20
    precision: str = "fp32"
    remote_backend: str = "auto"
    ssh_options: SSHOptions | None = None

    def __post_init__(self) -> None:
        from profiling import check_target  # not at the top: see the module docstring

        if check_target(self.target) == "predict":  # the one list of targets, predict:TABLE included (table read now)
            # Recorded in study.json: a relative table path would break `validate`/`report` run from another folder.
            table = os.path.abspath(os.path.expanduser(self.target.partition(":")[2]))
            object.__setattr__(self, "target", f"predict:{table}")
        for name in ("threads", "latency_runs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= 1, got {value!r}")
        if self.target == "local":  # a device's threads are the device's business
            check_threads(self.threads, source="--threads")

    def measure(
        self, model: Any, *, seed: int, model_name: str, profile: Callable[..., ProfileReport] | None = None
    ) -> tuple[LatencyRecord, CostRecord]:
        """Profile ``model`` as these options say (the latency, and the costs counted at ``latency_size``).

        The one call of :func:`profiling.profile_model` for a search; ``profile`` replaces it (a test's
        wrapper, :class:`search_spaces.TrialSteps`). Raises :class:`SearchError` naming ``model_name``
        when profiling gave no latency or no costs, and whatever profiling raises.
        """
        if self.latency_size is None:
            raise ConfigError("latency_size: unset; the search config sets it to the training size")
        if profile is None:
            from profiling import profile_model as profile  # not at the top: see the module docstring
        report = profile(
            model,
            target=self.target,
            size=self.latency_size,
            backends=("onnxruntime",),
            threads=self.threads,
            warmup=self.latency_warmup,
            runs=self.latency_runs,
            precision=self.precision,
            ssh_options=self.ssh_options,
            remote_backend=self.remote_backend,
            seed=seed,
            model_name=model_name,
        )
        if not report.latency or report.cost is None:
            raise SearchError(f"{model_name}: profiling gave no latency or cost ({'; '.join(report.skipped)})")
        return report.latency[0], report.cost


def _default_space() -> SearchSpace:
    from search_spaces._space import SearchSpace  # not at the top: see the module docstring

    return SearchSpace()


@dataclass(frozen=True)
class StrategyOptions:
    """``sampler`` (nsga2, tpe, random), ``population_size`` (NSGA-II), ``space``, ``early_stop``
    with ``early_stop_rule`` (:mod:`search_spaces._early_stop`)."""

    sampler: str = "nsga2"
    population_size: int = 8
    space: SearchSpace = field(default_factory=_default_space)
    early_stop: bool = True
    early_stop_rule: EarlyStopRule = field(default_factory=EarlyStopRule)

    def __post_init__(self) -> None:
        check_sampler(self.sampler, self.population_size)


def check_sampler(sampler: str, population_size: int) -> None:
    """Both strategies' sampler options: one of :data:`SAMPLERS`, and an NSGA-II population of 2 or more."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler: must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 2:
        raise ConfigError(f"--population-size: NSGA-II needs an integer >= 2, got {population_size!r}")


@dataclass(frozen=True)
class WorkerOptions:
    """``heartbeat_interval``/``grace_period`` (seconds; a trial whose worker has been silent for the
    grace period, default twice the interval, is marked FAIL), ``max_consecutive_failures``,
    ``max_consecutive_rejections``, ``poll_interval`` (seconds between looks at a study other
    workers are finishing), ``progress``: a live progress bar (for a terminal); without it, one log
    line per finished trial."""

    heartbeat_interval: int = 10
    grace_period: int | None = None
    max_consecutive_failures: int = 5
    max_consecutive_rejections: int = 200
    poll_interval: float = 1.0
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval", "max_consecutive_failures", "max_consecutive_rejections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= 1, got {value!r}")
        if self.grace_period is not None and self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"grace_period ({self.grace_period} s) must exceed heartbeat_interval ({self.heartbeat_interval} s), "
                "or live trials would be marked failed"
            )


def parts_from_options(
    owner: str,
    parts: Mapping[str, type],
    options: Mapping[str, Any],
    *,
    defaults: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The sub-configs of ``owner`` (``parts``: attribute -> class) from flat options, each routed to
    the part with a field of that name (``objectives=`` is :class:`ObjectiveOptions`' ``names``);
    ``defaults``: per-part field values that differ from the part class's own defaults. Unknown
    names raise TypeError (a typo in a script is a bug)."""
    routes = {f.name: (part, f.name) for part, cls in parts.items() for f in dataclasses.fields(cls)}
    if "objectives" in parts:
        routes.pop("names")
        routes["objectives"] = ("objectives", "names")
    unknown = sorted(set(options) - set(routes))
    if unknown:
        raise TypeError(f"{owner}.from_options: unknown option(s) {unknown}; known: {sorted(routes)}")
    kwargs: dict[str, dict[str, Any]] = {name: dict((defaults or {}).get(name, {})) for name in parts}
    for key, value in options.items():
        part, name = routes[key]
        kwargs[part][name] = value
    return {name: parts[name](**kwargs[name]) for name in parts}


def check_parts(config: Any, parts: Mapping[str, type]) -> None:
    for name, cls in parts.items():
        value = getattr(config, name)
        if not isinstance(value, cls):
            raise TypeError(f"{type(config).__name__}.{name} must be a {cls.__name__}, got {type(value).__name__}")


_PARTS: dict[str, type] = {
    "study": StudyOptions,
    "objectives": ObjectiveOptions,
    "training": ProxyTraining,
    "profiling": ProfilingOptions,
    "strategy": StrategyOptions,
    "workers": WorkerOptions,
}


@dataclass(frozen=True)
class SearchConfig:
    """Everything one search run needs (see the module docstring). Only ``study_dir`` is required."""

    study_dir: str | Path
    seed: int = 0
    study: StudyOptions = field(default_factory=StudyOptions)
    objectives: ObjectiveOptions = field(default_factory=ObjectiveOptions)
    training: ProxyTraining = field(default_factory=ProxyTraining)
    profiling: ProfilingOptions = field(default_factory=ProfilingOptions)
    strategy: StrategyOptions = field(default_factory=StrategyOptions)
    workers: WorkerOptions = field(default_factory=WorkerOptions)

    def __post_init__(self) -> None:
        check_parts(self, _PARTS)
        if self.profiling.latency_size is None:
            object.__setattr__(self, "profiling", dataclasses.replace(self.profiling, latency_size=self.training.size))
        sizes = self.strategy.space.input_sizes
        if sizes and max(sizes) != self.profiling.latency_size:
            # the latency size is where full-size members are timed; smaller inputs scale the training size from it
            raise ConfigError(
                f"--input-sizes {','.join(map(str, sizes))}: the largest must be the latency size "
                f"(--latency-size {self.profiling.latency_size}), which the others' training sizes are scaled from"
            )

    @classmethod
    def from_options(cls, study_dir: str | Path, *, seed: int = 0, **options: Any) -> SearchConfig:
        """A config from flat options, each routed to its sub-config: ``trials=``, ``objectives=``
        (the names), ``size=``, ``target=``, ``sampler=``, ``heartbeat_interval=`` ... Unknown names
        raise TypeError (a typo in a script is a bug)."""
        return cls(study_dir=study_dir, seed=seed, **parts_from_options("SearchConfig", _PARTS, options))

    # -- derived -------------------------------------------------------------------------------
    def parsed_objectives(self) -> tuple[Objective, ...]:
        return self.objectives.parsed()

    def constraints(self) -> Constraints:
        return self.objectives.constraints()

    def train_config(self) -> TrainConfig:
        return self.training.train_config(seed=self.seed)

    def fidelity_schedule(self):
        return self.training.fidelity_schedule()

    def resolved_study_dir(self) -> Path:
        return Path(self.study_dir).expanduser().resolve()

    def resolved_study_name(self) -> str:
        return self.study.study_name or self.resolved_study_dir().name

    def settings(self, storage_url: str) -> StudySettings:
        """What ``study.json`` records (and, as a dict, what a resumed study is checked against)."""
        from search_spaces._study import redact_url  # not at the top: see the module docstring

        t, p, s = self.training, self.profiling, self.strategy
        proxy = ProxyTrainingSettings(
            epochs=t.epochs, steps_per_epoch=t.steps_per_epoch, batch_size=t.batch_size, lr=t.lr,
            val_batches=t.val_batches, frames=t.frames, seed=self.seed, fidelity=tuple(t.fidelity),
            eta=t.eta if t.fidelity else None,
        )  # fmt: skip
        return StudySettings(
            objectives=tuple((o.field, o.direction) for o in self.parsed_objectives()),
            constraints=self.constraints(),
            target=p.target,
            precision=p.precision,
            threads=p.threads,
            data=t.data,
            size=t.size,
            latency_size=p.latency_size,
            sampler=s.sampler,
            population_size=s.population_size,
            seed=self.seed,
            space=s.space.to_dict(),
            trials_requested=self.study.trials,
            storage=redact_url(storage_url),
            study_name=self.resolved_study_name(),
            reference=s.space.base,
            search=MultiTrialSettings(
                proxy_training=proxy,
                early_stop=s.early_stop,
                early_stop_rule=dataclasses.asdict(s.early_stop_rule),
                # The stored one (STORED) is the driver's to read; a new study has none.
                budget_epochs=None if self.study.budget_epochs is STORED else self.study.budget_epochs,
            ),
        )
