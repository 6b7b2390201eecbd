"""The multi-fidelity rule (:mod:`search_spaces._fidelity`) applied inside a running trial.

Reads every trial's per-epoch validation Dice (``val_dice_history``) and costs from the shared
study, so workers on several machines judge against the same rung. Records on the trial:
``rung_dice`` (``{"1": dice, "3": dice, ...}``: the Dice it had at every rung it reached, for the
report) and ``rung_decisions`` (one line per rung: promoted or stopped, and why).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import optuna

from search_spaces._fidelity import FidelitySchedule, RungDecision, TrialHistory, rung_decision


def study_histories(study: optuna.Study, cost_names: Sequence[str]) -> list[TrialHistory]:
    """Every trial that has a Dice history and all cost objectives, in any state."""
    out = []
    for t in study.get_trials(deepcopy=False):
        history = t.user_attrs.get("val_dice_history")
        costs = {c: t.user_attrs.get(c) for c in cost_names}
        if not history or any(v is None for v in costs.values()):
            continue
        out.append(TrialHistory(trial=t.number, costs={k: float(v) for k, v in costs.items()}, dice_history=history))
    return out


def rung_step(
    trial: optuna.Trial,
    schedule: FidelitySchedule,
    costs: Mapping[str, float],
    history: Sequence[float],
    cost_names: Sequence[str],
) -> RungDecision | None:
    """Judge ``trial`` after its latest epoch; records the rung's Dice and the decision on the trial."""
    epoch = len(history)
    if epoch not in schedule.rungs:
        return None
    rung_dice = dict(trial.user_attrs.get("rung_dice") or {})
    rung_dice[str(epoch)] = float(history[-1])
    trial.set_user_attr("rung_dice", rung_dice)
    me = TrialHistory(trial=trial.number, costs=dict(costs), dice_history=tuple(history))
    decision = rung_decision(me, study_histories(trial.study, cost_names), schedule, cost_names)
    if decision is not None:
        lines = list(trial.user_attrs.get("rung_decisions") or [])
        trial.set_user_attr("rung_decisions", [*lines, decision.reason])
    return decision
