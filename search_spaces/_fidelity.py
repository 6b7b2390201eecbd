"""Multi-fidelity search: successive halving inside the multi-objective search (MO-ASHA style).

A trial trains for up to ``max(rungs)`` epochs (one cosine schedule over that budget, checkpoint
after every epoch). When it finishes epoch ``r`` of a rung ``r`` other than the last, the rule
decides whether it goes on, from its own weights and optimizer state (it simply keeps training;
nothing restarts from scratch):

    Competitors at rung r: every trial of the study that has a validation Dice for epoch r
    (finished, stopped or still running), this one included. Sort them by non-dominated sorting
    on (Dice at epoch r: maximise; each cost objective: minimise); the trial continues if its
    position in that order is among the first ``max(1, n // eta)`` of the n competitors.
    Otherwise it stops at rung r with the reason recorded (PRUNED, ``early_stopped``).

Order within one non-dominated front (the documented tie-break): higher Dice at the rung first,
then lower cost (cost objectives in their given order), then the earlier trial (lower number).
So two trials with identical (Dice, cost) are ordered by who came first.

As in ASHA (Li et al., 2020) the rule is asynchronous: it judges a trial against those that have
reached the rung *so far*, so the first trials to reach a rung are promoted freely (with n < eta,
``max(1, n // eta) = 1`` keeps the best one: a lone trial always continues) and the rule tightens
as the rung fills. The reference (``paper``) is ranked like every other trial but never stopped,
so that every study can compare against it at the full proxy budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rtseg_core import ConfigError, nondominated_ranks


@dataclass(frozen=True)
class FidelitySchedule:
    """Rungs in epochs (strictly increasing; the last is the full proxy budget) and the reduction factor."""

    rungs: tuple[int, ...]
    eta: int = 3

    def __post_init__(self) -> None:
        rungs = tuple(self.rungs)
        object.__setattr__(self, "rungs", rungs)
        if len(rungs) < 2 or any(not isinstance(r, int) or r < 1 for r in rungs):
            raise ConfigError(f"--fidelity: needs two or more epoch budgets >= 1, e.g. 1,3,9; got {list(rungs)}")
        if any(b <= a for a, b in zip(rungs, rungs[1:])):
            raise ConfigError(f"--fidelity: epoch budgets must increase strictly, got {list(rungs)}")
        if not isinstance(self.eta, int) or self.eta < 2:
            raise ConfigError(f"--eta: the reduction factor must be an integer >= 2, got {self.eta!r}")

    @property
    def epochs(self) -> int:
        return self.rungs[-1]

    @classmethod
    def parse(cls, text: str, eta: int = 3) -> FidelitySchedule:
        try:
            rungs = tuple(int(p) for p in str(text).split(",") if p.strip())
        except ValueError:
            raise ConfigError(f"--fidelity: expected comma-separated epoch counts like 1,3,9, got {text!r}") from None
        return cls(rungs, eta)


@dataclass(frozen=True)
class TrialHistory:
    """One trial as the rule sees it: its costs (lower is better) and its val Dice after epoch 1, 2, ..."""

    trial: int
    costs: Mapping[str, float]
    dice_history: Sequence[float] = field(default_factory=tuple)


@dataclass(frozen=True)
class RungDecision:
    """The rule's verdict for one trial at one rung."""

    rung: int  # epochs
    promote: bool
    position: int  # 1-based place in the rung's order
    competitors: int
    keep: int
    front_rank: int  # 0 = non-dominated at the rung
    reason: str


def rung_order(entries: Sequence[TrialHistory], rung: int, cost_names: Sequence[str]) -> list[tuple[int, int]]:
    """``[(trial, front_rank), ...]`` of the trials that reached ``rung``, best first (module docstring)."""
    reached = [e for e in entries if len(e.dice_history) >= rung]
    points = [[_dice(e.dice_history[rung - 1]), *(float(e.costs[c]) for c in cost_names)] for e in reached]
    directions = ["maximize", *("minimize" for _ in cost_names)]
    rank = [int(r) for r in nondominated_ranks(points, directions)] if reached else []
    order = sorted(range(len(reached)), key=lambda j: (rank[j], -points[j][0], *points[j][1:], reached[j].trial))
    return [(reached[j].trial, rank[j]) for j in order]


def rung_decision(
    me: TrialHistory, others: Sequence[TrialHistory], schedule: FidelitySchedule, cost_names: Sequence[str]
) -> RungDecision | None:
    """The decision after the last epoch in ``me.dice_history``; ``None`` when that epoch is no rung
    (or is the last rung, where training ends anyway)."""
    epoch = len(me.dice_history)
    if epoch not in schedule.rungs[:-1]:
        return None
    missing = [c for c in cost_names if c not in me.costs]
    if missing:
        raise ConfigError(f"trial {me.trial}: cost(s) {missing} unknown; the rung rule needs every cost objective")
    usable = [o for o in others if o.trial != me.trial and all(c in o.costs for c in cost_names)]
    order = rung_order([me, *usable], epoch, cost_names)
    n = len(order)
    keep = max(1, n // schedule.eta)
    position = next(i for i, (t, _) in enumerate(order) if t == me.trial) + 1
    front_rank = order[position - 1][1]
    promote = position <= keep
    dice = _dice(me.dice_history[epoch - 1])
    verdict = "promoted" if promote else "stopped"
    reason = (
        f"rung {epoch} ep: {verdict}: val Dice {dice:.4f} places {position}/{n} by non-dominated sorting on "
        f"(Dice, {', '.join(cost_names) or 'no cost'}) (front {front_rank + 1}); the top max(1, {n}//{schedule.eta}) "
        f"= {keep} continue to {schedule.rungs[schedule.rungs.index(epoch) + 1]} epochs"
    )
    return RungDecision(
        rung=epoch, promote=promote, position=position, competitors=n, keep=keep, front_rank=front_rank, reason=reason
    )


def _dice(value: float | None) -> float:
    return 0.0 if value is None or not math.isfinite(float(value)) else float(value)
