"""Stopping hopeless trials early in a multi-objective search (Optuna's pruners cannot: ``report`` raises).

The rule, checked after every proxy-training epoch ``e >= after_epochs`` except the last:

    Let the *reference* trials be the feasible Pareto-front members of the finished (COMPLETE)
    trials that are no worse than this trial, within ``cost_tolerance``, on every cost objective
    (latency, params, MACs): ``ref.cost <= this.cost * (1 + cost_tolerance)``. Stop this trial if
    some reference trial had, *at the same epoch e*, a validation Dice more than ``margin``
    above this trial's: ``this.dice[e] < ref.dice[e] - margin``.

Why it is safe to stop such a trial: a reference trial is at least as cheap and was clearly more
accurate at the same point of the same proxy training, so this trial is likely to end dominated
(a front member of similar or lower cost with a higher Dice dominates it). Comparing at the same
epoch, not against the reference's final Dice, keeps early and late epochs comparable. The cost
objectives depend on the architecture only, so the search profiles a trial *before* training it,
which is what makes the rule possible. Trials slower than every front member are never stopped
(nothing at their cost or below is known), and nor is any trial before a first trial completes.

Stopped trials are recorded as PRUNED with ``user_attrs["pruned_reason"]`` giving this
comparison, ``user_attrs["early_stopped"] = True`` and their Dice history; they count towards
the requested number of trials (they were trained and judged) but have no objective values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rtseg_core import ConfigError


@dataclass(frozen=True)
class EarlyStopRule:
    """Settings of the rule in the module docstring.

    ``after_epochs``: the first epoch after which a trial may be stopped (k). ``margin``: the Dice
    (a fraction, like Dice) a reference must lead by; a negative margin (down to -1) stops trials that are
    up to ``-margin`` *better*, which only tests use to make the rule fire. ``cost_tolerance``:
    the relative slack of "similar or lower cost" (0.1 = up to 10 % costlier counts as similar).
    """

    after_epochs: int = 2  # the first epoch of a short proxy is too noisy to judge by
    margin: float = 0.1
    cost_tolerance: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.after_epochs, int) or self.after_epochs < 1:
            raise ConfigError(f"--early-stop-after: must be an integer >= 1 (epochs), got {self.after_epochs!r}")
        if not -1.0 <= self.margin <= 1.0:
            raise ConfigError(f"--early-stop-margin: must be in [-1, 1] (Dice, a fraction), got {self.margin!r}")
        if not self.cost_tolerance >= 0:
            raise ConfigError(f"--early-stop-tolerance: must be >= 0, got {self.cost_tolerance!r}")


@dataclass(frozen=True)
class Reference:
    """One feasible Pareto-front member as the rule sees it: its costs and its per-epoch val Dice."""

    trial: int
    costs: Mapping[str, float]  # cost objective name -> value (lower is better)
    dice_history: Sequence[float] = field(default_factory=tuple)  # val Dice after epoch 1, 2, ...


@dataclass(frozen=True)
class StopDecision:
    """Why a trial was stopped: which reference beat it, at which epoch, by how much."""

    epoch: int
    dice: float
    reference_trial: int
    reference_dice: float
    margin: float
    reason: str


def should_stop(
    epoch: int,
    dice: float,
    costs: Mapping[str, float],
    references: Sequence[Reference],
    rule: EarlyStopRule,
    *,
    total_epochs: int,
) -> StopDecision | None:
    """Apply the rule to one trial after ``epoch`` (1-based); ``None`` means keep training.

    ``costs`` are this trial's cost objectives (the same names as in each reference's ``costs``;
    a name a reference lacks makes that reference unusable). A NaN Dice is treated as 0 (the
    trial learnt nothing). The last epoch never stops a trial: training is over anyway.
    """
    if epoch < rule.after_epochs or epoch >= total_epochs:
        return None
    mine = 0.0 if dice is None or math.isnan(dice) else float(dice)
    best: tuple[float, Reference] | None = None
    for ref in references:
        if len(ref.dice_history) < epoch:
            continue  # trained with fewer epochs (or history lost): not comparable at this epoch
        if not all(
            name in ref.costs and ref.costs[name] <= value * (1.0 + rule.cost_tolerance)
            for name, value in costs.items()
        ):
            continue
        ref_dice = float(ref.dice_history[epoch - 1])
        if math.isnan(ref_dice):
            continue
        if best is None or ref_dice > best[0]:
            best = (ref_dice, ref)
    if best is None or not mine < best[0] - rule.margin:
        return None
    ref_dice, ref = best
    cost_text = ", ".join(f"{k} {ref.costs[k]:.4g} vs {v:.4g}" for k, v in costs.items()) or "no cost objectives"
    reason = (
        f"early stop after epoch {epoch}: val Dice {mine:.4f} is more than {rule.margin:g} below the "
        f"{ref_dice:.4f} that Pareto member trial {ref.trial} had at the same epoch, at similar or lower cost "
        f"({cost_text}; tolerance {rule.cost_tolerance:g})"
    )
    return StopDecision(
        epoch=epoch, dice=mine, reference_trial=ref.trial, reference_dice=ref_dice, margin=rule.margin, reason=reason
    )
