"""What a search returns: :class:`SearchSummary` with its feasible front of :class:`FrontMember` trials,
and :func:`summarize_study`, which reads both from a study as its storage holds it (either strategy)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from models import RTSegConfig
from rtseg_core import ConfigError, SearchError, is_feasible, text_table
from search_spaces._space import summarize_config
from search_spaces._study import REFERENCE_ATTR, feasible_front, trial_name

OUTCOME_COUNTS = ("complete", "early_stopped", "rejected", "failed", "running")


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
    outcome (complete, early_stopped, rejected, failed, running). ``epochs_trained``: by every
    trial of the study; ``budget_epochs``: the run's ``--budget-epochs`` (None: no budget).
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
    epochs_trained: int = 0
    budget_epochs: int | None = None

    @property
    def budget_reached(self) -> bool:
        return self.budget_epochs is not None and self.epochs_trained >= self.budget_epochs

    def budget_line(self) -> str:
        """The epoch budget and what was trained (empty without a budget)."""
        if self.budget_epochs is None:
            return ""
        if self.budget_reached:
            return (
                f"epoch budget reached: {self.epochs_trained} epochs trained by the study's trials, budget "
                f"{self.budget_epochs} (trials in flight may exceed it by their remaining epochs)"
            )
        return f"epoch budget not reached: {self.epochs_trained} of {self.budget_epochs} epochs trained"

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
        return text_table([header, *rows])

    def verdict(self) -> str:
        """One line: does any feasible front member beat the reference on every objective?"""
        if self.reference is None:
            return "the reference (paper) trial has not completed, so nothing can be compared with it"
        ref = ", ".join(f"{f} {_fmt_value(f, self.reference.values.get(f))}" for f, _ in self.objectives)
        if self.beats_reference:
            who = ", ".join(f"trial {n}" for n in self.beats_reference)
            verb = "beats" if len(self.beats_reference) == 1 else "beat"
            return f"{who} {verb} {self.reference.name} in the proxy ({ref}) on every objective"
        # issue 11: proxy numbers (short training, val split); only `validate` checks them at a full budget.
        return f"no feasible front member beats {self.reference.name} in the proxy ({ref}) on every objective"


@dataclass(frozen=True)
class SupernetSearchSummary(SearchSummary):
    """A one-shot search's :class:`SearchSummary`, plus ``subnets_per_minute``: the subnets this run
    evaluated (COMPLETE) per minute of its wall time."""

    subnets_per_minute: float = math.nan


def count_outcomes(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """Trials per outcome (:data:`OUTCOME_COUNTS`); a PRUNED trial is early-stopped or rejected."""
    counts = dict.fromkeys(OUTCOME_COUNTS, 0)
    for t in trials:
        if t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["early_stopped" if t.user_attrs.get("early_stopped") else "rejected"] += 1
        elif t.state == TrialState.FAIL:
            counts["failed"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
    return counts


def epochs_trained(trials: Sequence[FrozenTrial]) -> int:
    """Epochs trained by ``trials`` in any state, as each records it (``epochs_trained``, updated
    after every epoch, so running, early-stopped and failed trials count what they trained)."""
    return sum(int(t.user_attrs.get("epochs_trained") or 0) for t in trials)


def summarize_study(
    study: optuna.Study,
    fields: list[str],
    directions: list[str],
    *,
    study_dir: Path,
    storage: str,
    constraints: dict,
    trials_requested: int,
    trials_run: int = 0,
    wall_s: float = 0.0,
    budget_epochs: int | None = None,
) -> SearchSummary:
    """The :class:`SearchSummary` of a study as its storage holds it now (feasibility respected)."""
    trials = study.get_trials(deepcopy=False)
    front = [_member(t, fields) for t in feasible_front(study, fields, directions)]
    cost_index = next((i for i, f in enumerate(fields) if f in ("latency_ms", "params", "macs")), 0)
    front.sort(key=lambda m: (m.values[fields[cost_index]], m.trial))
    ref_trial = next((t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get(REFERENCE_ATTR)), None)
    reference = _member(ref_trial, fields) if ref_trial is not None else None
    beats: list[int] = []
    if reference is not None:
        for m in front:
            if m.trial != reference.trial and all(
                _strictly_better(m.values[f], reference.values[f], d) for f, d in zip(fields, directions)
            ):
                beats.append(m.trial)
    return SearchSummary(
        study_dir=study_dir,
        study_name=study.study_name,
        storage=storage,
        objectives=tuple(zip(fields, directions)),
        constraints=constraints,
        trials_requested=trials_requested,
        trials_run=trials_run,
        counts=count_outcomes(trials),
        front=tuple(front),
        reference=reference,
        beats_reference=tuple(beats),
        wall_s=wall_s,
        epochs_trained=epochs_trained(trials),
        budget_epochs=budget_epochs,
    )


def _member(t: FrozenTrial, fields: list[str]) -> FrontMember:
    """A completed trial as the summary shows it. Its stored config must be readable: showing any
    other architecture beside this trial's numbers would be wrong, so an unreadable one is an error."""
    if "config" not in t.user_attrs:
        raise SearchError(
            f"trial {t.number} ({trial_name(t)}): completed but has no stored architecture (user attribute "
            "'config'); the study was written by something else or edited. Remove the trial or start a new --study"
        )
    try:
        config = RTSegConfig.from_dict(t.user_attrs["config"], source=f"trial {t.number}")
    except (ConfigError, TypeError, ValueError) as exc:
        raise SearchError(
            f"trial {t.number} ({trial_name(t)}): its stored architecture (user attribute 'config') cannot be "
            f"read: {exc}"
        ) from None
    values = dict(zip(fields, t.values)) if t.values is not None else {}
    return FrontMember(
        trial=t.number,
        name=trial_name(t),
        config=config,
        values=values,
        feasible=is_feasible(t.constraints),
        params=t.user_attrs.get("params"),
        latency_ms=t.user_attrs.get("latency_ms"),
        dice=t.user_attrs.get("dice"),
    )


def _strictly_better(a: float, b: float, direction: str) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return False
    return a > b if direction == "maximize" else a < b


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
