"""What a search returns: :class:`SearchSummary` with its feasible front of :class:`FrontMember` trials."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models import RTSegConfig
from rtseg_core import text_table
from search_spaces._space import summarize_config


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
