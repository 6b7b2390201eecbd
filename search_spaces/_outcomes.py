"""How a trial's ending reads to the search loop: rejected (:func:`reject`), surplus (:class:`Surplus`),
and the stop rule on consecutive failures and rejections (:class:`Streaks`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NoReturn

import optuna
from optuna.trial import FrozenTrial, TrialState

from rtseg_core import SearchError
from search_spaces._config import WorkerOptions

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
