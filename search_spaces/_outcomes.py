"""How a trial's ending reads to the search loop: rejected (:func:`reject`), surplus (:class:`Surplus`),
and the stop rule on consecutive failures and rejections (:class:`Streaks`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import optuna
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from models import PRESETS, RTSegConfig, count_parameters
from rtseg_core import CONFIG_JSON, Constraints, SearchError, StudyDir, SuiteError, atomic_write_json
from search_spaces._config import WorkerOptions
from search_spaces._space import SearchSpace, suggest_config, summarize_config
from search_spaces._study import REFERENCE_ATTR

log = logging.getLogger(__name__)


class Surplus(SearchError):
    """This worker's new trial is not needed: others already finished or run the requested number."""


def reject(trial: optuna.Trial, reason: str) -> NoReturn:
    """End ``trial`` as rejected before its evaluation (PRUNED, user attribute ``rejected``): an
    impossible architecture or one that violates a cost constraint. It does not count towards the
    requested number; the NSGA-II sampler ranks it as infeasible (:mod:`search_spaces._dashboard`)."""
    trial.set_user_attr("rejected", reason)
    trial.set_user_attr("stage", "rejected")
    log.debug("trial %d rejected: %s", trial.number, reason)
    raise optuna.TrialPruned(f"rejected: {reason}")


@dataclass(frozen=True)
class Admitted:
    """An architecture a trial will evaluate: its config, the built model, its parameter count."""

    arch: RTSegConfig
    model: nn.Module
    params: int
    is_reference: bool


def admit(
    trial: optuna.Trial,
    space: SearchSpace,
    constraints: Constraints,
    study: StudyDir,
    build: Callable[[RTSegConfig], nn.Module],
) -> Admitted:
    """The first steps every objective of the driver takes: draw the architecture (the reference is
    the preset itself, even where a custom space fixes a field elsewhere), record it in the trial and
    its folder, build it with ``build`` (a fresh model, or a subnet of the supernet) and reject it
    before any evaluation when it is impossible or over the parameter limit (the reference is
    never rejected: it is the yardstick)."""
    is_reference = bool(trial.user_attrs.get(REFERENCE_ATTR))
    trial.set_user_attr("stage", "sampling")
    try:
        arch = suggest_config(trial, space, check=not is_reference)
    except SuiteError as exc:  # an impossible combination: nothing to evaluate
        reject(trial, str(exc))
    if is_reference:
        arch = PRESETS[space.base]
    trial.set_user_attr("config", arch.to_dict())
    trial.set_user_attr("summary", summarize_config(arch))
    atomic_write_json(study.trial_dir(trial.number) / CONFIG_JSON, arch.to_dict())
    model = build(arch)
    params = count_parameters(model)
    trial.set_user_attr("params", params)
    over = constraints.params_violation(params)
    if over is not None and over > 0 and not is_reference:
        trial.set_constraint("max_params", over)
        reject(trial, f"{params:,} parameters > --max-params {constraints.max_params:,}")
    return Admitted(arch, model, params, is_reference)


def is_surplus(trial: FrozenTrial) -> bool:
    return str(trial.user_attrs.get("fail_reason", "")).startswith(Surplus.__name__)


class Streaks:
    """The stop rule on consecutive outcomes: ``max_consecutive_failures`` failed trials in a row
    (a surplus trial is no failure) or ``max_consecutive_rejections`` rejected ones in a row raise
    :class:`SearchError`; any other outcome (finished, or a surplus trial) resets both counts."""

    def __init__(self, workers: WorkerOptions, *, unit: str, study_dir: Path) -> None:
        self.max_failures = workers.max_consecutive_failures
        self.max_rejections = workers.max_consecutive_rejections
        self.unit = unit
        self.study_dir = study_dir
        self.failures = self.rejections = 0

    def add(self, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL and not is_surplus(trial):
            self.failures += 1
            if self.failures >= self.max_failures:
                raise SearchError(
                    f"{self.failures} {self.unit}s in a row failed; the last ({self.unit} {trial.number}) with: "
                    f"{trial.user_attrs.get('fail_reason', 'unknown reason')}. Fix the cause, then run the same "
                    f"command again to resume (finished {self.unit}s are kept in {self.study_dir})"
                )
        elif trial.state == TrialState.PRUNED and "rejected" in trial.user_attrs:
            self.rejections += 1
            if self.rejections >= self.max_rejections:
                raise SearchError(
                    f"{self.rejections} sampled architectures in a row were rejected before evaluation; the last: "
                    f"{trial.user_attrs['rejected']}. Loosen the constraints or widen the search space"
                )
        else:
            self.failures = self.rejections = 0
