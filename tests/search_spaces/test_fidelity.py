"""The rung promotion rule of the multi-fidelity search, on hand-made histories."""

import pytest

from rtseg_core import ConfigError
from search_spaces._fidelity import FidelitySchedule, TrialHistory, rung_decision, rung_order

S = FidelitySchedule((1, 3, 9), eta=3)
COST = ["latency_ms"]


def h(trial, latency, *dice):
    return TrialHistory(trial=trial, costs={"latency_ms": latency}, dice_history=tuple(dice))


def test_only_rung_epochs_are_judged_and_the_last_rung_never_stops():
    others = [h(1, 5.0, 0.9, 0.9, 0.9)]
    assert rung_decision(h(2, 9.0, 0.1, 0.1), others, S, COST) is None  # epoch 2 is no rung
    nine = h(2, 9.0, *([0.0] * 9))
    assert rung_decision(nine, [h(1, 5.0, *([0.9] * 9))] * 1, S, COST) is None  # last rung: training ends


def test_a_lone_trial_is_promoted():
    d = rung_decision(h(0, 10.0, 0.2), [], S, COST)
    assert d.promote and d.position == 1 and d.competitors == 1 and d.keep == 1


def test_top_third_by_nondominated_sorting():
    # Six trials reached rung 1. Fronts on (Dice max, latency min):
    # front 1: t1 (0.8, 10), t2 (0.5, 4), t3 (0.3, 2); front 2: t4 (0.4, 5), t5 (0.7, 12); front 3: t6 (0.2, 6)
    hist = [h(1, 10, 0.8), h(2, 4, 0.5), h(3, 2, 0.3), h(4, 5, 0.4), h(5, 12, 0.7), h(6, 6, 0.2)]
    assert rung_order(hist, 1, COST) == [(1, 0), (2, 0), (3, 0), (5, 1), (4, 1), (6, 2)]
    keep = {t.trial: rung_decision(t, hist, S, COST).promote for t in hist}
    assert keep == {1: True, 2: True, 3: False, 4: False, 5: False, 6: False}  # 6 // 3 = 2 continue
    stopped = rung_decision(hist[3], hist, S, COST)
    assert "stopped" in stopped.reason and "5/6" in stopped.reason and stopped.front_rank == 1


def test_trials_that_have_not_reached_the_rung_do_not_compete():
    me = h(7, 3.0, 0.1, 0.2, 0.3)  # at rung 3
    others = [h(1, 1.0, 0.9), h(2, 1.0, 0.9, 0.9, 0.9)]  # t1 only reached epoch 1
    d = rung_decision(me, others, S, COST)
    assert d.competitors == 2 and d.keep == 1 and not d.promote  # t2 dominates (cheaper, better)


def test_ties_go_to_the_earlier_trial():
    a, b, c = h(4, 5.0, 0.5), h(2, 5.0, 0.5), h(9, 5.0, 0.5)  # identical (Dice, cost): one front
    assert [t for t, _ in rung_order([a, b, c], 1, COST)] == [2, 4, 9]
    assert rung_decision(b, [a, c], S, COST).promote
    assert not rung_decision(a, [b, c], S, COST).promote


def test_within_a_front_higher_dice_then_lower_cost():
    # Same Dice, different cost: the cheaper dominates. Different Dice on one front: Dice decides.
    assert [t for t, _ in rung_order([h(1, 9, 0.5), h(2, 3, 0.5)], 1, COST)] == [2, 1]
    assert [t for t, r in rung_order([h(1, 3, 0.4), h(2, 9, 0.6)], 1, COST)] == [2, 1]


def test_nan_dice_counts_as_zero_and_bad_schedules_are_refused():
    assert rung_order([h(1, 1, float("nan")), h(2, 2, 0.1)], 1, COST)[0][0] == 2
    for rungs, eta in (((3, 1), 3), ((1,), 3), ((1, 3), 1), ((0, 2), 2)):
        with pytest.raises(ConfigError):
            FidelitySchedule(rungs, eta)
    assert FidelitySchedule.parse("1, 3,9").rungs == (1, 3, 9)


def test_multi_fidelity_search_records_rungs_and_stops_with_the_reason(tmp_path, tiny_search):
    import optuna
    from optuna.trial import TrialState

    from search_spaces import run_search

    study_dir = tmp_path / "mf"
    summary = run_search(tiny_search(study_dir, trials=5, fidelity=(1, 2), eta=2))
    assert summary.finished == 5
    assert summary.counts["early_stopped"] >= 1  # seeded: the rule does stop some trials here
    study = optuna.load_study(study_name="mf", storage=f"sqlite:///{study_dir / 'study.db'}")
    trials = [t for t in study.get_trials() if "val_dice_history" in t.user_attrs]
    for t in trials:
        assert "1" in t.user_attrs["rung_dice"]  # every trained trial has its Dice at the first rung
        assert t.user_attrs["rung_decisions"][0].startswith("rung 1 ep: ")
    for t in trials:
        promoted = "promoted" in t.user_attrs["rung_decisions"][0]
        if t.user_attrs.get("reference") or promoted:
            assert t.state == TrialState.COMPLETE and len(t.user_attrs["val_dice_history"]) == 2
            assert set(t.user_attrs["rung_dice"]) == {"1", "2"}
        else:  # stopped at the first rung, with the rule's reason, counted as early-stopped
            assert t.state == TrialState.PRUNED and t.user_attrs["early_stopped"]
            assert t.user_attrs["pruned_reason"].startswith("rung 1 ep: stopped")
            assert len(t.user_attrs["val_dice_history"]) == 1
    import csv

    with open(study_dir / "history.csv", newline="") as f:
        rows = {int(r["number"]): r for r in csv.DictReader(f)}
    for t in trials:
        assert rows[t.number]["rung_dice"].startswith(f"1:{t.user_attrs['rung_dice']['1']:.4f}")
    settings = __import__("json").loads((study_dir / "study.json").read_text())
    assert settings["proxy_training"]["fidelity"] == [1, 2] and settings["proxy_training"]["epochs"] == 2
