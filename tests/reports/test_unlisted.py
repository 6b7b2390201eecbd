"""Trials without a candidate row (early-stopped, rejected, failed) are counted and listed, not dropped silently."""

from __future__ import annotations

from reports import build_report, compute_report, report_summary

from .conftest import SETTINGS, cand, write_study

HEADER = "number,name,state,datetime_start,datetime_complete,dice,latency_ms,feasible,counts,params,epochs_trained,cpu_s,reason,config"  # noqa: E501
ROWS = [
    "0,paper,COMPLETE,2026-12-01T10:00:00,2026-12-01T10:00:09,0.90,50.0,True,True,1900000,3,8.1,,C16",
    "1,trial-1,COMPLETE,2026-12-01T10:00:09,2026-12-01T10:00:15,0.88,25.0,True,True,1000000,3,5.0,,C8",
    "2,trial-2,PRUNED,2026-12-01T10:00:15,2026-12-01T10:00:18,,,False,True,900000,1,2.2,"
    '"early-stopped after epoch 1: val Dice 0.2100 trails trial-1 (0.5000 at epoch 1, cost <=) by 0.2900 > 0.05",C8',
    "3,trial-3,PRUNED,2026-12-01T10:00:18,2026-12-01T10:00:18,,,False,False,9000000,,0.4,"
    '"rejected: violates max_params before training (params 9,000,000, ...)",C32',
    "4,trial-4,PRUNED,2026-12-01T10:00:18,2026-12-01T10:00:21,,,False,True,800000,1,2.0,"
    '"early-stopped after epoch 1: val Dice 0.1000 trails paper",C8',
    "5,trial-5,FAIL,2026-12-01T10:00:21,2026-12-01T10:00:22,,,False,False,,,0.3,boom: out of memory,C8",
]


def test_early_stopped_and_other_unlisted_trials_are_counted_and_listed(tmp_path):
    records = [cand("paper"), cand("trial-1", source="trial", trial=1, dice=0.88, latency_ms=25.0)]
    study = write_study(tmp_path / "study", records, settings=SETTINGS, history_csv="\n".join([HEADER, *ROWS]) + "\n")
    info = compute_report(study)
    u = info.unlisted
    assert [(t.number, t.outcome) for t in u.trials] == [
        (2, "early-stopped"), (3, "rejected"), (4, "early-stopped"), (5, "failed")]  # fmt: skip
    assert u.counts() == {"early-stopped": 2, "rejected": 1, "failed": 1}
    assert u.trials[0].reason.startswith("early-stopped after epoch 1")
    assert u.note() == (
        "4 trial(s) of the search are not in this table because they wrote no candidate record: 2 early-stopped, "
        "1 rejected, 1 failed (from history.csv; listed below)."
    )
    html = build_report(study).read_text()
    section = html[html.index("All candidates and measurement conditions") :]
    assert 'id="unlisted"' in section and "2 early-stopped" in section and "boom: out of memory" in section
    assert report_summary(info)["unlisted_trials"]["counts"]["early-stopped"] == 2


def test_every_trial_listed_or_no_history_says_nothing(tiny_study):
    info = compute_report(tiny_study)
    assert info.unlisted.trials == () and info.unlisted.note() == ""
    assert 'id="unlisted"' not in build_report(tiny_study).read_text()


def test_a_real_multi_fidelity_search_lists_the_trials_it_stopped(mf_search):
    import csv

    with open(mf_search / "history.csv", newline="") as f:
        stopped = [r["name"] for r in csv.DictReader(f) if r["state"] == "PRUNED"]
    info = compute_report(mf_search)
    assert stopped, "eta 2 over 7 trials stops some at a rung"
    assert [t.name for t in info.unlisted.trials if t.outcome == "early-stopped"] == stopped
    assert not set(stopped) & set(info.candidates["name"])
