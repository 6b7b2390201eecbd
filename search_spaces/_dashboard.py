"""How a finished search trial reads in optuna-dashboard and to the NSGA-II sampler.

Three things the study's own records do not give those tools:

- **The constraints in the dashboard.** Optuna 5's ``trial.set_constraint(name, value)`` stores
  one system attribute per name (``constraints:<name>``); optuna-dashboard (0.21) reads only the
  older list form, the system attribute ``constraints``, and shows ``constraints: []`` without
  it. :func:`publish_outcome` writes that list too (values ordered by name) and the names with
  their values as the user attribute ``constraints``. Optuna reads both forms, so
  ``trial.constraints`` lists every value twice (by name and by position ``"0"``, ``"1"``, ...);
  feasibility is unchanged, and every summed violation doubles alike, so the constrained
  domination order does not change either.
- **Why a trial ended.** Rejected-before-training and early-stopped trials are both PRUNED; the
  user attribute ``outcome`` (:data:`OUTCOMES`) tells them apart in the dashboard's trial table.
  A trial rejected as an impossible architecture (no cost to compare) records the violation
  ``valid_architecture = 1``, so every rejected trial carries at least one violated constraint.
- **What the sampler learns.** Optuna 5's NSGA-II builds its generations from COMPLETE trials
  only, so architectures rejected for a constraint never reach it and it keeps proposing their
  neighbours. :class:`RejectionAwareNSGAIISampler` counts rejected trials into their generation
  and ranks them as infeasible members (by their summed violation, behind every feasible trial),
  which is Deb's constrained NSGA-II as Optuna implements it for COMPLETE trials.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

DASHBOARD_CONSTRAINTS_KEY = "constraints"
"""The system attribute optuna-dashboard reads constraints from (a list of floats)."""

OUTCOMES = ("complete", "early-stopped", "rejected", "failed")
INVALID_ARCHITECTURE = "valid_architecture"
"""Constraint recorded (value 1, violated) for a rejected trial that has no cost to compare."""


def outcome_of(user_attrs: dict, error: BaseException | None) -> str:
    """The trial's outcome from its user attributes and the exception it ends with (None: returned)."""
    if "rejected" in user_attrs:
        return "rejected"
    if user_attrs.get("early_stopped"):
        return "early-stopped"
    return "complete" if error is None else "failed"


def publish_outcome(trial: optuna.Trial, error: BaseException | None) -> str:
    """Record ``outcome`` and make the trial's constraints readable by optuna-dashboard.

    Call it while the trial still runs (finished trials cannot be written to), with the exception
    the objective is ending with, or None when it returns values. Returns the outcome.
    """
    outcome = outcome_of(trial.user_attrs, error)
    trial.set_user_attr("outcome", outcome)
    named = _named_constraints(trial.constraints)
    if outcome == "rejected" and not any(v > 0 for v in named.values()):
        trial.set_constraint(INVALID_ARCHITECTURE, 1.0)
        named[INVALID_ARCHITECTURE] = 1.0
    if named:
        names = sorted(named)
        trial.set_user_attr("constraints", {k: named[k] for k in names})
        trial.storage.set_trial_system_attr(trial._trial_id, DASHBOARD_CONSTRAINTS_KEY, [named[k] for k in names])
    return outcome


def _named_constraints(constraints: dict[str, float]) -> dict[str, float]:
    """Optuna 5's named constraints, without the positional copies of the dashboard's list."""
    return {k: float(v) for k, v in constraints.items() if not k.isdigit()}


def is_rejected(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.PRUNED and trial.user_attrs.get("outcome") == "rejected"


def as_infeasible(trial: FrozenTrial, directions: Sequence[StudyDirection]) -> FrozenTrial:
    """A rejected trial as NSGA-II's population needs it: COMPLETE, the worst value of every
    objective (it has none: it was never trained) and its recorded constraint violations."""
    view = copy.copy(trial)
    view.state = TrialState.COMPLETE
    view.values = [-float("inf") if d == StudyDirection.MAXIMIZE else float("inf") for d in directions]
    return view


class RejectionAwareNSGAIISampler(optuna.samplers.NSGAIISampler):
    """NSGA-II whose generations include the trials rejected before training, as infeasible members.

    Only the population bookkeeping changes (which trials form a generation and its parents);
    crossover, mutation and selection are Optuna's. Copies of rejected trials are used, the
    stored trials stay PRUNED.
    """

    def _with_rejected(self, study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        return [as_infeasible(t, study.directions) if is_rejected(t) else t for t in trials]

    def get_trial_generation(self, study: optuna.Study, trial: FrozenTrial) -> int:
        key = self._get_generation_key()
        generation = trial.system_attrs.get(key, None)
        if generation is not None:
            return generation
        # As Optuna's, counting the rejected trials of a generation towards its size.
        max_generation, max_count = 0, 0
        for t in reversed(study._get_trials(deepcopy=False, use_cache=True)):
            if not (t.state == TrialState.COMPLETE or is_rejected(t)):
                continue
            g = t.system_attrs.get(key, -1)
            if g > max_generation:
                max_generation, max_count = g, 1
            elif g == max_generation:
                max_count += 1
        generation = max_generation if max_count < self.population_size else max_generation + 1
        study._storage.set_trial_system_attr(trial._trial_id, key, generation)
        return generation

    def get_population(self, study: optuna.Study, generation: int) -> list[FrozenTrial]:
        key = self._get_generation_key()
        members = [
            t
            for t in study._get_trials(deepcopy=False, use_cache=True)
            if (t.state == TrialState.COMPLETE or is_rejected(t)) and t.system_attrs.get(key, None) == generation
        ]
        return self._with_rejected(study, members)

    def get_parent_population(self, study: optuna.Study, generation: int) -> list[FrozenTrial]:
        return self._with_rejected(study, super().get_parent_population(study, generation))
