"""validate --seeds: paired training seeds, per-seed records, resumable per (candidate, seed), collapse flagged.

A real tiny search, real trainings, a real kill between seeds (waiting for a state, never a time);
the paired verdicts are checked against rtseg_core.paired_difference on the stored per-seed numbers.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import pytest
import torch
from optuna.trial import TrialState

from rtseg_core import (
    CandidateRecord,
    EvalMetrics,
    ReappliedResult,
    StudyDir,
    paired_difference,
    read_json,
    seed_summary,
)

from .test_validate import REPO, env, validate_command, validate_in_process, validate_trials


def test_two_seeds_resume_after_a_kill_between_seeds_and_a_third_seed_reuses_them(tmp_path, searched_study, capsys,
                                                                                 caplog):  # fmt: skip
    def _run(study, *extra, rc=0):  # the kill needs a process, the later runs do not
        return validate_in_process(capsys, caplog, study, "--epochs", "2", *extra, rc=rc)

    study = tmp_path / "nas"
    template, summary = searched_study(2)  # a copy of the session's tiny 2-trial search
    shutil.copytree(template, study)
    names = {m.name for m in summary.front} | {"paper"}
    sd = StudyDir(study)
    proc = subprocess.Popen(validate_command(study, "--epochs", "2", "--seeds", "2"), cwd=REPO, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    # Claims are queued seed by seed: a seed-1 checkpoint means every seed-0 training is finished.
    deadline = time.time() + 300
    while time.time() < deadline and not any((sd.validated_dir / "seed-1").glob("*/checkpoint.pt")):
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert all(sd.read_trained(n) is not None for n in names)  # seed 0: validated/<name>/, as before
    stamps = {n: sd.trained_json(n).stat().st_mtime_ns for n in names}

    done = _run(study, "--seeds", "2")
    # the first seed was not trained again; the second seed of every candidate was
    assert {n: sd.trained_json(n).stat().st_mtime_ns for n in names} == stamps
    assert "trained now: " in done.stdout and all(f"{n} (seed 1)" in done.stdout for n in names)
    runs = {n: {s: sd.read_trained(n, None if s == 0 else s) for s in (0, 1)} for n in names}
    assert all(r[0].train_seed == 0 and r[1].train_seed == 1 for r in runs.values())
    assert all((sd.validated_dir / "seed-1" / n / "trained.json").is_file() for n in names)
    # paired: seed 1 trained with its own seed on the split and images of the data seed (--seed 0)
    for n in names:
        train = torch.load(sd.validated(n, 1) / "checkpoint.pt", weights_only=True)["meta"]["train"]
        assert (train["seed"], train["data_seed"]) == (1, 0)
    claims = validate_trials(f"sqlite:///{study / 'study.db'}", "nas")
    complete = [(t.user_attrs["candidate"], t.user_attrs["seed"]) for t in claims if t.state == TrialState.COMPLETE]
    assert sorted(complete) == sorted((n, s) for n in names for s in (0, 1))  # one claim per (candidate, seed)

    stored = sd.read_validated_summary()
    assert stored.seeds == (0, 1) and set(stored.models) == names
    # the study's target is an estimate: it times nothing, so its speed ratios have no interval (said so)
    assert all(r["vs_paper"] is None for r in sd.read_validated_latency().candidates.values())
    assert "(ESTIMATED, no timing rounds: no interval)" in done.stdout
    paper = {s: r.test.dice for s, r in runs["paper"].items()}
    for name in names:
        m = stored.models[name]
        dice = {s: r.test.dice for s, r in runs[name].items()}
        assert m.per_seed_dice() == dice and m.dice == seed_summary(dice, what=f"{name}: test Dice")
        record = CandidateRecord.from_dict(read_json(sd.validated(name) / "candidate.json"))
        assert record.dice == pytest.approx(sum(dice.values()) / 2) and record.seeds == [0, 1]
        assert (record.dice_low, record.dice_high) == (m.dice.low, m.dice.high)
        assert "seeds 0, 1" in record.notes or "seed(s) 0, 1" in record.recipe
        if name == "paper":
            assert m.vs_paper is None
            continue
        expected = paired_difference(dice, paper)
        assert m.vs_paper.differences == expected.differences and m.vs_paper.verdict == expected.verdict
        assert "Dice - paper's" in done.stdout and expected.describe() in done.stdout
    # A later run with a third seed reuses both finished seeds and trains only seed 2.
    again = _run(study, "--seeds", "3", "--latency-target", "local")
    assert {n: sd.trained_json(n).stat().st_mtime_ns for n in names} == stamps
    # timed here in alternating rounds: each speed ratio to paper carries the timer's interval over them
    latency = sd.read_validated_latency()
    rows = latency.candidates
    for n in names - {"paper"}:
        vs = rows[n]["vs_paper"]
        assert vs["low"] <= vs["ratio"] <= vs["high"] and vs["rounds"] == latency.conditions["rounds"] == 3
        assert vs["ratio"] == pytest.approx(rows["paper"]["median_ms"] / rows[n]["median_ms"], rel=1e-9)
        assert f"[{vs['low']:.2f}, {vs['high']:.2f}]" in again.stdout and "(MEASURED, 3 paired rounds)" in again.stdout
        low, high = rows[n]["median_interval_ms"]
        assert low <= rows[n]["median_ms"] <= high
    assert "reusing" in again.stderr and all(f"{n} (seed 2)" in again.stdout for n in names)
    assert all(f"{n} (seed 1)" not in again.stdout.split("finished before:")[0] for n in names)
    assert sd.read_validated_summary().seeds == (0, 1, 2)
    # another budget is still refused, whatever the seeds
    other = validate_in_process(capsys, caplog, study, "--epochs", "3", "--seeds", "3", rc=2)
    assert "budget" in other.stderr


def _run_of(seed, dice, ps=None, fh=None):
    from validate._seeds import seed_runs

    test = EvalMetrics(dice=dice, dice_ps=dice if ps is None else ps, dice_fh=dice if fh is None else fh,
                       delta_aop_deg=1.0)  # fmt: skip
    result = ReappliedResult({"name": "x", "parent": "p", "precision": "fp32"}, {}, (), test, (), None, seed)
    return seed_runs({seed: result})[0]


def test_one_seed_says_single_run_and_a_collapsed_run_is_flagged_and_kept_in_the_mean():
    from validate._seeds import model_stats, paired_menu

    paper = (_run_of(0, 0.80),)
    one = model_stats((_run_of(0, 0.82),), paper, what="trial-1")
    assert one.vs_paper.verdict == "single run"
    menu = paired_menu({"paper": model_stats(paper, None, what="paper"), "trial-1": one},
                       {"paper": {"median_ms": 10.0}, "trial-1": {"median_ms": 5.0}}, "measured")  # fmt: skip
    assert "single run" in menu and "2.00x (MEASURED, no timing rounds: no interval)" in menu
    assert "better" not in menu.split("verdict:")[0]

    papers = tuple(_run_of(s, d) for s, d in ((0, 0.80), (1, 0.81), (2, 0.79)))
    # seed 2 never learned the FH class: collapsed, flagged with its seed, included in the mean
    runs = (_run_of(0, 0.83), _run_of(1, 0.84), _run_of(2, 0.41, ps=0.80, fh=0.02))
    m = model_stats(runs, papers, what="trial-2")
    assert m.collapsed_seeds == (2,) and runs[2].collapsed == ("fh",)
    assert m.dice.mean == pytest.approx((0.83 + 0.84 + 0.41) / 3)
    assert m.vs_paper.verdict == paired_difference({0: 0.83, 1: 0.84, 2: 0.41}, {0: 0.80, 1: 0.81, 2: 0.79}).verdict
    assert m.vs_paper.verdict == "indistinguishable"  # inside the noise: never called a win
    menu = paired_menu({"paper": model_stats(papers, None, what="paper"), "trial-2": m}, {}, "measured")
    assert "seed 2 (fh)" in menu and "indistinguishable" in menu and "no latency" in menu


def test_speed_vs_paper_pairs_the_rounds_and_states_a_slowdown_as_such():
    from profiling import Samples, TimedResult, speedup_interval
    from validate._graphs import speed_vs_paper
    from validate._seeds import speed_text

    paper = Samples("paper", tuple((10.0 + r, 10.5 + r, 9.5 + r) for r in range(8)))
    fast = Samples("fast", tuple((5.0 + r / 2, 5.2 + r / 2, 4.9 + r / 2) for r in range(8)))
    slow = Samples("slow", tuple((20.0 + r, 20.5 + r, 19.0 + r) for r in range(8)))
    rec = object()  # speed_vs_paper reads only the samples
    vs = speed_vs_paper(TimedResult(rec, paper), TimedResult(rec, fast))
    low, high = speedup_interval(paper.wall_ms, fast.wall_ms)
    assert (vs["low"], vs["high"], vs["rounds"]) == (low, high, 8) and low < vs["ratio"] < high
    assert speed_vs_paper(TimedResult(rec, paper), TimedResult(rec, None)) is None  # an estimate: no rounds
    rows = {"paper": {"median_ms": 10.0}, "fast": {"median_ms": 5.0, "vs_paper": vs}}
    assert speed_text(rows["fast"], rows["paper"], "measured") == (
        f"{vs['ratio']:.2f}x [{low:.2f}, {high:.2f}] faster (MEASURED, 8 paired rounds)"
    )
    s = speed_vs_paper(TimedResult(rec, paper), TimedResult(rec, slow))
    text = speed_text({"median_ms": 20.0, "vs_paper": s}, rows["paper"], "measured")
    assert text == f"{1 / s['ratio']:.2f}x [{1 / s['high']:.2f}, {1 / s['low']:.2f}] SLOWER (MEASURED, 8 paired rounds)"


def test_seeds_option_is_checked_before_any_work():
    from rtseg_core import ConfigError
    from validate import ValidateConfig, parse_seeds

    assert parse_seeds("3", 5) == (5, 6, 7) and parse_seeds("0,2", 0) == (0, 2)
    for bad in ("0", "a", "1,,x"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad, 0)
    with pytest.raises(ConfigError, match="--seeds: must be distinct"):
        ValidateConfig(study_dir="s", seeds=(1, 1))
    assert ValidateConfig(study_dir="s", seed=4).train_seeds == (4,)
    # the seeds are not part of the stored budget: a later run may add seeds
    assert ValidateConfig(study_dir="s", seeds=(0, 1)).budget("d") == ValidateConfig(study_dir="s").budget("d")
