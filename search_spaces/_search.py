"""Multi-objective architecture search over the RTSeg-Net family: ``run_search(SearchConfig) -> SearchSummary``.

What one call does:

1. Opens (or creates) the Optuna study in ``config.storage`` (default ``STUDY_DIR/study.db``) with
   a heartbeat; a new study gets the ``paper`` architecture enqueued as its first trial, so every
   study contains the reference point. Trials left RUNNING by a killed worker become FAIL.
2. Runs trials (:mod:`search_spaces._trial`) until ``config.trials`` of them have finished
   (COMPLETE or early-stopped), counting those of earlier runs and of other workers: running the
   same command again resumes, and a larger ``--trials`` runs only the missing ones. Rejected and
   failed trials do not count; ``max_consecutive_failures`` failures in a row stop the search.
3. Writes ``study.json``, ``environment.json`` and, after every trial, ``history.csv``.
4. Returns the feasible Pareto front and whether any member beats the reference on every objective.

Reproducibility: with one worker and SQLite, ``seed`` fixes the sampler, the data split and
the training of every trial (measured latencies still vary from run to run). A resumed study
reseeds its sampler with ``seed`` and the number of trials already in the study, so it does not
re-propose the architectures of the first run. Workers sharing a study through a server also mix
in their process id (the interleaving of their trials cannot be reproduced anyway).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models._config import RTSegConfig
from profiling._backends import check_target
from rtseg_core import ConfigError
from search_spaces._early_stop import EarlyStopRule
from search_spaces._objectives import DEFAULT_OBJECTIVES, Constraints, Objective, parse_objectives
from search_spaces._space import SearchSpace, summarize_config

log = logging.getLogger(__name__)

SAMPLERS = ("nsga2", "tpe", "random")
# Settings that change what a trial's numbers mean: a resumed study must keep them.
FIXED_SETTINGS = (
    "objectives",
    "constraints",
    "data",
    "size",
    "latency_size",
    "target",
    "precision",
    "threads",
    "proxy_training",
    "space",
)


@dataclass(frozen=True)
class SearchConfig:
    """Everything one search run needs. Only ``study_dir`` is required.

    Study: ``trials`` = the number of finished trials (COMPLETE or early-stopped) the study
    should hold when this run ends; ``storage`` = an SQLAlchemy URL (None: ``STUDY_DIR/study.db``;
    ``postgresql://`` is rewritten to psycopg 3); ``study_name`` (None: the study folder's name).

    Objectives/constraints: ``objectives`` from ``dice``, ``delta_aop``, ``latency``, ``params``,
    ``macs``; ``min_fps``, ``max_latency_ms``, ``max_params`` (None = no limit).

    Profiling: ``target`` = ``local`` (ONNX Runtime on this CPU, measured), ``ssh://user@host[:port]``
    (measured on the device, ``ssh_options``/``remote_backend``) or ``jetson-nano-estimate``
    (roofline estimate, labelled estimated); ``latency_size`` (None: ``size``) is the input side
    timed; ``threads``, ``latency_warmup``, ``latency_runs``, ``precision``.

    Proxy training (``segmentation.train``): ``data``, ``size``, ``epochs``,
    ``steps_per_epoch``, ``batch_size``, ``lr``, ``val_batches``, ``frames``, ``device``, ``seed``;
    ``train_threads`` (torch threads for the whole run; on a busy machine 1 avoids thread contention).

    Search: ``sampler`` (nsga2, tpe, random), ``population_size`` (NSGA-II), ``space``,
    ``early_stop`` with ``early_stop_rule``. Robustness: ``heartbeat_interval``/``grace_period``
    (seconds; a trial whose worker has been silent for the grace period, default twice the
    interval, is marked FAIL), ``max_consecutive_failures``, ``max_consecutive_rejections``.
    """

    study_dir: str | Path
    trials: int = 20
    data: str = "synthetic"
    storage: str | None = None
    study_name: str | None = None
    target: str = "local"
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    min_fps: float | None = None
    max_latency_ms: float | None = None
    max_params: int | None = None
    sampler: str = "nsga2"
    population_size: int = 8
    seed: int = 0
    size: int = 96
    latency_size: int | None = None
    epochs: int = 4
    steps_per_epoch: int | None = 25
    batch_size: int = 8
    lr: float = 3e-3  # higher than full training's 1e-3: a proxy has few steps to show what it can learn
    val_batches: int | None = None
    frames: str = "ps+fh"
    device: str = "auto"
    train_threads: int | None = None  # torch intra-op threads while training/evaluating (None: torch's default)
    threads: int = 1
    latency_warmup: int = 5
    latency_runs: int = 20
    precision: str = "fp32"
    remote_backend: str = "auto"
    ssh_options: Any = None  # profiling.SSHOptions for an ssh:// target
    early_stop: bool = True
    early_stop_rule: EarlyStopRule = field(default_factory=EarlyStopRule)
    space: SearchSpace = field(default_factory=SearchSpace)
    heartbeat_interval: int = 10
    grace_period: int | None = None
    max_consecutive_failures: int = 5
    max_consecutive_rejections: int = 200
    poll_interval: float = 1.0
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.objectives, str):
            object.__setattr__(self, "objectives", tuple(o.strip() for o in self.objectives.split(",") if o.strip()))
        # Command-line limits of 0 or less mean "no limit".
        for name in ("min_fps", "max_latency_ms", "max_params"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                object.__setattr__(self, name, None)
        if self.latency_size is None:
            object.__setattr__(self, "latency_size", self.size)
        if not isinstance(self.trials, int) or self.trials < 0:
            raise ConfigError(f"--trials: must be an integer >= 0, got {self.trials!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"--sampler: must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.population_size < 2:
            raise ConfigError(f"--population-size: NSGA-II needs at least 2, got {self.population_size}")
        check_target(self.target)  # the one list of targets, predict:TABLE included (its table read now)
        for name in ("threads", "latency_runs", "heartbeat_interval", "max_consecutive_failures", "epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= 1, got {getattr(self, name)!r}")
        if self.train_threads is not None and (not isinstance(self.train_threads, int) or self.train_threads < 1):
            raise ConfigError(f"--train-threads: must be an integer >= 1, got {self.train_threads!r}")
        if self.grace_period is not None and self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"grace_period ({self.grace_period} s) must exceed heartbeat_interval ({self.heartbeat_interval} s), "
                "or live trials would be marked failed"
            )
        self.parsed_objectives()
        self.constraints()
        self.train_config()  # validates size, epochs, batch size, lr

    # -- derived -------------------------------------------------------------------------------
    def parsed_objectives(self) -> tuple[Objective, ...]:
        return parse_objectives(self.objectives)

    def constraints(self) -> Constraints:
        return Constraints(min_fps=self.min_fps, max_latency_ms=self.max_latency_ms, max_params=self.max_params)

    def train_config(self):
        from segmentation._train import TrainConfig

        return TrainConfig(
            data=self.data,
            size=self.size,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            device=self.device,
            steps_per_epoch=self.steps_per_epoch,
            val_batches=self.val_batches,
            frames=self.frames,
        )

    def resolved_study_dir(self) -> Path:
        return Path(self.study_dir).expanduser().resolve()

    def resolved_study_name(self) -> str:
        return self.study_name or self.resolved_study_dir().name

    def settings(self, storage_url: str) -> dict[str, Any]:
        """What ``study.json`` records (and what a resumed study is checked against)."""
        from search_spaces._study import redact_url

        return {
            "objectives": [[o.field, o.direction] for o in self.parsed_objectives()],
            "objective_names": [o.name for o in self.parsed_objectives()],
            "constraints": self.constraints().to_dict(),
            "target": self.target,
            "precision": self.precision,
            "threads": self.threads,
            "data": self.data,
            "size": self.size,
            "latency_size": self.latency_size,
            "sampler": self.sampler,
            "population_size": self.population_size,
            "seed": self.seed,
            "proxy_training": {
                "epochs": self.epochs,
                "steps_per_epoch": self.steps_per_epoch,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "val_batches": self.val_batches,
                "frames": self.frames,
                "seed": self.seed,
            },
            "early_stop": {"enabled": self.early_stop, **dataclasses.asdict(self.early_stop_rule)},
            "space": self.space.to_dict(),
            "trials_requested": self.trials,
            "storage": redact_url(storage_url),
            "study_name": self.resolved_study_name(),
            "reference": self.space.base,
        }


@dataclass(frozen=True)
class FrontMember:
    """One trial as the summary shows it. ``values`` maps objective field -> value."""

    trial: int
    name: str
    config: RTSegConfig
    values: dict[str, float]
    feasible: bool
    params: int | None = None
    latency_ms: float | None = None
    dice: float | None = None

    @property
    def summary(self) -> str:
        return summarize_config(self.config)


@dataclass(frozen=True)
class SearchSummary:
    """The outcome of :func:`run_search` (the whole study, not only this run's trials).

    ``front``: the feasible Pareto front of the COMPLETE trials, sorted by the first cost
    objective (Optuna's ``best_trials`` ignores feasibility; this does not). ``reference``: the
    enqueued ``paper`` trial, if it completed. ``beats_reference``: trial numbers of front
    members strictly better than the reference on every objective. ``counts``: trials per
    outcome (complete, early_stopped, rejected, failed, running).
    """

    study_dir: Path
    study_name: str
    storage: str
    objectives: tuple[tuple[str, str], ...]
    constraints: dict[str, float | None]
    trials_requested: int
    trials_run: int  # trials this call ran (any outcome)
    counts: dict[str, int]
    front: tuple[FrontMember, ...]
    reference: FrontMember | None
    beats_reference: tuple[int, ...]
    wall_s: float

    @property
    def finished(self) -> int:
        return self.counts.get("complete", 0) + self.counts.get("early_stopped", 0)

    def table(self) -> str:
        """The feasible Pareto front as a text table (config summary, every objective, params)."""
        if not self.front:
            return "no feasible completed trial yet"
        fields = [f for f, _ in self.objectives]
        header = ["trial", "name", "config", *fields, "params", "beats ref"]
        rows = []
        for m in self.front:
            rows.append(
                [
                    str(m.trial),
                    m.name,
                    m.summary,
                    *(_fmt_value(f, m.values.get(f)) for f in fields),
                    "-" if m.params is None else f"{m.params:,}",
                    "yes" if m.trial in self.beats_reference else "",
                ]
            )
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        return "\n".join(lines)

    def verdict(self) -> str:
        """One line: does any feasible front member beat the reference on every objective?"""
        if self.reference is None:
            return "the reference (paper) trial has not completed, so nothing can be compared with it"
        ref = ", ".join(f"{f} {_fmt_value(f, self.reference.values.get(f))}" for f, _ in self.objectives)
        if self.beats_reference:
            who = ", ".join(f"trial {n}" for n in self.beats_reference)
            verb = "beats" if len(self.beats_reference) == 1 else "beat"
            return f"{who} {verb} {self.reference.name} ({ref}) on every objective"
        return f"no feasible front member beats {self.reference.name} ({ref}) on every objective"


def run_search(config: SearchConfig) -> SearchSummary:
    """Run (or resume) the search described by ``config``; see the module docstring.

    Raises :class:`SearchError` when the study cannot be opened or continued (storage, changed
    settings, every architecture over ``--max-params``, too many failures in a row), and
    :class:`ConfigError` for bad data or settings.
    """
    from search_spaces._runner import SearchRunner

    return SearchRunner(config).run()


def _fmt_value(field_name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if field_name in ("params", "macs"):
        return f"{value:,.0f}"
    if field_name == "latency_ms":
        return f"{value:.3f} ms"
    if field_name == "delta_aop_deg":
        return f"{value:.2f} deg"
    return f"{value:.4f}"


def sampler_seed(seed: int, existing_trials: int, *, shared: bool) -> int:
    """The sampler seed of one run: ``seed`` and the study's size (and the pid for shared storage)."""
    text = f"{seed}:{existing_trials}" + (f":{os.getpid()}" if shared else "")
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


@contextlib.contextmanager
def quiet_optuna(level: int) -> Iterator[None]:
    """Optuna's own log level for the block (its per-trial INFO lines would break the progress bar)."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(level)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def _elapsed(start: float) -> float:
    return round(time.perf_counter() - start, 3)
