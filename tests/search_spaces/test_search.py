"""The search: early-stopping rule, objectives and constraints, feasibility of "best", and real tiny searches.

The searches are real: Optuna with an SQLite file, proxy training of real models on the phantom
data, evaluation, profiling (the Jetson roofline estimate, so that they stay fast; the local
ONNX Runtime path runs in the CLI test) and the files the reports read.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import optuna
import pytest

from models import PRESETS
from rtseg_core import (
    DEPLOYMENT_SIZE,
    CandidateRecord,
    ConfigError,
    SearchError,
    StudyDir,
    read_training_metrics,
    read_validation,
)
from search_spaces import (
    EarlyStopRule,
    ProxyTraining,
    Reference,
    SearchConfig,
    StrategyOptions,
    StudyOptions,
    TrialSteps,
    params_from_config,
    run_search,
    should_stop,
)
from search_spaces._results import summarize_study
from search_spaces._study import redact_url, resolve_storage_url

optuna.logging.set_verbosity(optuna.logging.WARNING)


def load(study_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name=study_dir.name, storage=f"sqlite:///{study_dir / 'study.db'}")


def history(study_dir: Path) -> list[dict[str, str]]:
    with open(study_dir / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# -- the early-stopping rule on synthetic histories -------------------------------------------------
RULE = EarlyStopRule(after_epochs=2, margin=0.05, cost_tolerance=0.1)
FAST_GOOD = Reference(trial=3, costs={"latency_ms": 8.0}, dice_history=(0.30, 0.60, 0.70, 0.80))


def test_rule_stops_a_trial_that_trails_a_cheaper_member_at_the_same_epoch():
    decision = should_stop(2, 0.40, {"latency_ms": 10.0}, [FAST_GOOD], RULE, total_epochs=4)
    assert decision is not None
    assert (decision.epoch, decision.reference_trial, decision.reference_dice) == (2, 3, 0.60)
    assert "trial 3" in decision.reason and "epoch 2" in decision.reason


@pytest.mark.parametrize(
    ("epoch", "dice", "latency", "why"),
    [
        (1, 0.00, 10.0, "before after_epochs"),
        (4, 0.00, 10.0, "the last epoch never stops"),
        (2, 0.56, 10.0, "within the margin"),
        (2, 0.40, 7.0, "the member is costlier (8 > 7 * 1.1)"),
    ],
)
def test_rule_keeps_training(epoch, dice, latency, why):
    assert should_stop(epoch, dice, {"latency_ms": latency}, [FAST_GOOD], RULE, total_epochs=4) is None, why


def test_rule_similar_cost_counts_and_best_reference_wins():
    slower_better = Reference(trial=5, costs={"latency_ms": 10.9}, dice_history=(0.5, 0.9))  # within 10 %
    decision = should_stop(2, 0.7, {"latency_ms": 10.0}, [FAST_GOOD, slower_better], RULE, total_epochs=3)
    assert decision is not None and decision.reference_trial == 5 and decision.reference_dice == 0.9


def test_rule_ignores_references_without_that_epoch_and_needs_every_cost():
    short = Reference(trial=1, costs={"latency_ms": 1.0, "params": 10}, dice_history=(0.9,))
    assert should_stop(2, 0.1, {"latency_ms": 5.0, "params": 100}, [short], RULE, total_epochs=5) is None
    heavy = Reference(trial=2, costs={"latency_ms": 1.0, "params": 1000}, dice_history=(0.9, 0.9))
    assert should_stop(2, 0.1, {"latency_ms": 5.0, "params": 100}, [heavy], RULE, total_epochs=5) is None
    light = Reference(trial=4, costs={"latency_ms": 1.0, "params": 50}, dice_history=(0.9, 0.9))
    assert should_stop(2, 0.1, {"latency_ms": 5.0, "params": 100}, [heavy, light], RULE, total_epochs=5) is not None


def test_rule_treats_nan_dice_as_zero_and_nothing_to_compare_as_keep():
    assert should_stop(2, math.nan, {"latency_ms": 10.0}, [FAST_GOOD], RULE, total_epochs=4) is not None
    assert should_stop(2, 0.0, {"latency_ms": 10.0}, [], RULE, total_epochs=4) is None


@pytest.mark.parametrize("kwargs", [{"after_epochs": 0}, {"margin": 2.0}, {"cost_tolerance": -0.1}])
def test_rule_settings_are_checked(kwargs):
    with pytest.raises(ConfigError):
        EarlyStopRule(**kwargs)


# -- objectives, constraints, the feasible front ----------------------------------------------------
def test_no_limit_is_none_and_a_zero_limit_is_refused(tiny_search):
    assert not tiny_search(Path("unused")).constraints().active
    for option, value in (("min_fps", 0), ("max_latency_ms", -1), ("max_params", 0)):
        with pytest.raises(ConfigError, match=f"--{option.replace('_', '-')}: must be a positive number, got {value}"):
            tiny_search(Path("unused"), **{option: value})


def test_config_parts_and_flat_options_agree(tiny_space):
    flat = SearchConfig.from_options("s", trials=3, size=48, sampler="random", space=tiny_space, seed=7)
    parts = SearchConfig(
        study_dir="s",
        seed=7,
        study=StudyOptions(trials=3),
        training=ProxyTraining(size=48),
        strategy=StrategyOptions(sampler="random", space=tiny_space),
    )
    assert flat == parts
    # Timed at the deployment size by default, where validate times too; None: at the training size.
    assert flat.profiling.latency_size == DEPLOYMENT_SIZE == 256
    assert SearchConfig.from_options("s", size=48, latency_size=None).profiling.latency_size == 48
    assert flat.settings("sqlite:///x") == parts.settings("sqlite:///x")
    with pytest.raises(TypeError, match="unknown option.*'trails'"):
        SearchConfig.from_options("s", trails=3)
    with pytest.raises(ConfigError, match="--trials"):
        StudyOptions(trials=-1)


def test_best_respects_feasibility(tmp_path):
    study = optuna.create_study(directions=["maximize", "minimize"])
    rows = [  # (dice, latency, violation, reference)
        (0.80, 10.0, -0.1, True),  # paper
        (0.95, 4.0, 0.3, False),  # dominates everything, but infeasible
        (0.85, 8.0, -0.2, False),  # feasible, beats paper on both
        (0.70, 12.0, -0.5, False),  # dominated
        (0.60, 3.0, 0.0, False),  # feasible (0 counts as feasible), fastest
    ]
    for dice, lat, violation, ref in rows:
        trial = study.ask()
        trial.set_constraint("max_latency_ms", violation)
        trial.set_user_attr("config", PRESETS["paper"].to_dict())
        if ref:
            trial.set_user_attr("reference", "paper")
        study.tell(trial, [dice, lat])
    summary = summarize_study(
        study,
        ["dice", "latency_ms"],
        ["maximize", "minimize"],
        study_dir=tmp_path,
        storage="memory",
        constraints={},
        trials_requested=5,
    )
    assert [m.trial for m in summary.front] == [4, 2]  # sorted by latency; trial 1 excluded
    # Optuna 5's best_trials filters by set_constraint() values too (older versions did not): they agree
    assert {t.number for t in study.best_trials} == {4, 2}
    assert summary.reference is not None and summary.reference.trial == 0
    assert summary.beats_reference == (2,)
    assert "trial 2 beats paper" in summary.verdict()
    assert "0.8500" in summary.table()


@pytest.mark.parametrize(
    ("stored", "message"),
    [({"conv_widths": "wide"}, "cannot be read"), (None, "no stored architecture")],
)
def test_an_unreadable_trial_config_is_an_error_naming_the_trial(tmp_path, stored, message):
    study = optuna.create_study(directions=["maximize", "minimize"])
    for config in (PRESETS["paper"].to_dict(), stored):
        trial = study.ask()
        if config is not None:
            trial.set_user_attr("config", config)
        study.tell(trial, [0.8 + trial.number / 10, 10.0])  # trial 1 is on the front
    with pytest.raises(SearchError, match=rf"trial 1 \(trial-1\).*{message}"):
        summarize_study(
            study,
            ["dice", "latency_ms"],
            ["maximize", "minimize"],
            study_dir=tmp_path,
            storage="memory",
            constraints={},
            trials_requested=2,
        )


# -- storage ------------------------------------------------------------------------------------------
def test_storage_urls(tmp_path):
    assert resolve_storage_url(None, tmp_path) == f"sqlite:///{tmp_path.resolve() / 'study.db'}"
    assert resolve_storage_url("postgresql://u:pw@h:5432/db", tmp_path) == "postgresql+psycopg://u:pw@h:5432/db"
    assert resolve_storage_url("postgres://u@h/db", tmp_path) == "postgresql+psycopg://u@h/db"
    assert "pw" not in redact_url("postgresql+psycopg://u:pw@h:5432/db")
    with pytest.raises(SearchError, match="psycopg2"):
        resolve_storage_url("postgresql+psycopg2://u@h/db", tmp_path)
    with pytest.raises(SearchError, match="not a database URL"):
        resolve_storage_url("study.db", tmp_path)


# -- real searches --------------------------------------------------------------------------------------
def test_search_records_a_failure_goes_on_then_resumes_only_the_missing_trials(tmp_path, tiny_search):
    real_train = TrialSteps().train

    def train_with_huge_lr_for_trial_1(arch, cfg, out_dir, **kwargs):
        if Path(out_dir).name == "1":  # a real NaN loss, from a learning rate of 1e9
            cfg = dataclasses.replace(cfg, lr=1e9)
        return real_train(arch, cfg, out_dir, **kwargs)

    steps = TrialSteps(train=train_with_huge_lr_for_trial_1)
    study_dir = tmp_path / "nas"
    options = {"steps_per_epoch": 2}  # the loss turns NaN at step 2 with lr 1e9
    # NSGA-II with a population of 2: the resumed trial is bred from the first generation.
    options = {**options, "sampler": "nsga2", "population_size": 2}
    first = run_search(tiny_search(study_dir, trials=2, **options), steps=steps)
    # trial 1 diverged: recorded as FAIL with its reason, and the search ran another one to reach 2
    assert first.trials_run == 3 and first.finished == 2 and first.counts["failed"] == 1
    assert first.reference is not None and first.reference.trial == 0
    trials = load(study_dir).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert "TrainingDiverged" in trials[1].user_attrs["fail_reason"] and "nan" in trials[1].user_attrs["fail_reason"]
    assert trials[1].user_attrs["stage"] == "training"
    assert "TrainingDiverged" in history(study_dir)[1]["reason"]

    ref = CandidateRecord.from_dict(json.loads((study_dir / "trials/0/candidate.json").read_text()))
    assert (ref.name, ref.source, ref.split, ref.dataset, ref.trial) == ("paper", "reference", "val", "synthetic", 0)
    assert ref.params == 1_906_507 and ref.config == PRESETS["paper"].to_dict()
    assert ref.latency_kind == "estimated" and ref.target == "jetson-nano-estimate" and ref.feasible
    assert 0.0 <= ref.dice <= 1.0 and ref.macs > 0 and ref.latency_ms > 0 and (ref.height, ref.width) == (32, 32)
    assert CandidateRecord.from_dict(json.loads((study_dir / "trials/2/candidate.json").read_text())).name == "trial-2"
    for name in ("config.json", "metrics.json", "validation.json", "measurement.json", "checkpoint.pt"):
        assert (study_dir / "trials/2" / name).is_file(), name
    trial_2 = StudyDir(study_dir).trial_dir(2)
    assert read_validation(trial_2)["summary"]["mean"]["dice"] is not None
    assert len(read_training_metrics(trial_2)["epochs"]) == 1
    settings = json.loads((study_dir / "study.json").read_text())
    assert settings["objectives"] == [["dice", "maximize"], ["latency_ms", "minimize"]]
    assert settings["proxy_training"]["epochs"] == 1 and settings["size"] == 32
    assert settings["target"] == "jetson-nano-estimate" and settings["constraints"]["max_params"] is None
    read = StudyDir(study_dir).read_settings()  # the one reader takes what the one writer wrote
    assert read.strategy == "multi-trial" and read.to_dict() == settings and read.assumed == ()
    assert "hostname" in json.loads((study_dir / "environment.json").read_text())
    candidate_before = (study_dir / "trials/0/candidate.json").read_bytes()
    done_before = {t.number: t.datetime_complete for t in trials}

    # One more trial requested: only that one runs.
    again = run_search(tiny_search(study_dir, trials=3, **options), steps=steps)
    assert again.trials_run == 1 and again.finished == 3
    trials = load(study_dir).trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert {t.number: t.datetime_complete for t in trials if t.number < 3} == done_before
    assert (study_dir / "trials/0/candidate.json").read_bytes() == candidate_before
    assert [r["state"] for r in history(study_dir)] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]

    assert run_search(tiny_search(study_dir, trials=3, **options)).trials_run == 0  # nothing left to do
    with pytest.raises(SearchError, match="size"):
        run_search(tiny_search(study_dir, trials=4, size=48, **options))  # other settings: not comparable


def test_early_stopping_fires_in_a_search(tmp_path, tiny_search):
    # A margin of -1 makes any trial trail the reference "clearly": the rule must fire after epoch 1.
    rule = EarlyStopRule(after_epochs=1, margin=-1.0, cost_tolerance=1e6)
    summary = run_search(tiny_search(tmp_path / "es", trials=2, epochs=2, early_stop=True, early_stop_rule=rule))
    assert summary.counts["early_stopped"] == 1 and summary.finished == 2
    paper, stopped = load(tmp_path / "es").trials
    assert paper.state == optuna.trial.TrialState.COMPLETE and len(paper.user_attrs["val_dice_history"]) == 2
    assert stopped.state == optuna.trial.TrialState.PRUNED
    assert stopped.user_attrs["early_stopped"] is True and stopped.user_attrs["epochs_trained"] == 1
    assert (
        stopped.user_attrs["stopped_by_trial"] == 0
        and "early stop after epoch 1" in stopped.user_attrs["pruned_reason"]
    )
    assert not (tmp_path / "es/trials/1/candidate.json").exists()  # no result to report
    assert "early stop" in history(tmp_path / "es")[1]["reason"]


def test_max_params_rejects_before_training_and_best_is_feasible(tmp_path, tiny_search, tiny_space):
    study_dir = tmp_path / "limit"
    limit = 120_000
    run_search(tiny_search(study_dir, trials=0, max_params=limit))  # creates the study (and enqueues paper) only
    study = load(study_dir)
    wide = tiny_space.smallest_config().replace(conv_widths=(16, 24, 32), token_widths=(48, 64), mlp_ratio=2.0)
    narrow = tiny_space.smallest_config()
    study.enqueue_trial(params_from_config(wide, tiny_space))
    study.enqueue_trial(params_from_config(narrow, tiny_space))
    summary = run_search(tiny_search(study_dir, trials=2, max_params=limit))
    trials = load(study_dir).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert "--max-params" in trials[1].user_attrs["rejected"] and trials[1].constraints["max_params"] > 0
    assert not (study_dir / "trials/1/checkpoint.pt").exists()  # never trained
    # the reference is trained although it breaks the limit, and is infeasible
    paper = CandidateRecord.from_dict(json.loads((study_dir / "trials/0/candidate.json").read_text()))
    assert paper.name == "paper" and not paper.feasible and trials[0].constraints["max_params"] > 0
    assert [m.trial for m in summary.front] == [2]
    assert summary.counts == {"complete": 2, "early_stopped": 0, "rejected": 1, "failed": 0, "running": 0}
    assert [r["feasible"] for r in history(study_dir)] == ["False", "False", "True"]

    with pytest.raises(SearchError, match="smallest architecture"):
        run_search(tiny_search(tmp_path / "impossible", max_params=1_000))


def test_seed_makes_a_study_reproducible(tmp_path, tiny_search):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_search(tiny_search(tmp_path / name, trials=2, sampler="tpe", seed=seed))
        runs[name] = load(tmp_path / name).trials
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert [t.params for t in a] == [t.params for t in b]
    assert a[1].user_attrs["val_dice_history"] == b[1].user_attrs["val_dice_history"]  # same data, same training
    assert a[1].params != c[1].params  # another seed draws another architecture


def test_what_would_fail_every_trial_is_one_error_before_the_study(tmp_path, tiny_search, tiny_space_file, capsys):
    from rtseg_nas.cli._main import main

    # Smaller than the data sets load: refused when the config is built.
    with pytest.raises(ConfigError, match="--size: must be an integer from 16 to 4096, got 8"):
        tiny_search(tmp_path / "s8", size=8)
    study_dir = tmp_path / "cli"
    argv = ["search", "--data", "synthetic:24", "--study", str(study_dir), "--size", "8", "--target",
            "jetson-nano-estimate", "--space", str(tiny_space_file), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err and "Trial" not in err
    assert not study_dir.exists()
    # One image per batch: BatchNorm of the deepest (1x1) map cannot train, in every architecture.
    study_dir = tmp_path / "batch1"
    with pytest.raises(ConfigError, match=r"--size 32, --batch-size 1: a training step of the smallest architecture"):
        run_search(tiny_search(study_dir, batch_size=1))
    assert not (study_dir / "study.db").exists()  # no study, so no trial in it


def test_a_bug_inside_a_trial_stops_the_search_instead_of_being_recorded(tmp_path, tiny_search):
    def buggy_train(arch, cfg, out_dir, **kwargs):
        raise TypeError("train() got an unexpected keyword argument 'lr_schedule'")

    study_dir = tmp_path / "bug"
    with pytest.raises(TypeError, match="lr_schedule"):
        run_search(tiny_search(study_dir, trials=2), steps=TrialSteps(train=buggy_train))
    (trial,) = load(study_dir).trials  # the first trial stopped the search; no second one was drawn
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["stage"] == "training"
    assert trial.user_attrs["fail_reason"].startswith("TypeError")
    assert history(study_dir)[0]["reason"].startswith("TypeError: train() got an unexpected keyword")


def test_a_documented_trial_failure_is_recorded_and_the_search_goes_on(tmp_path, tiny_search):
    real_train = TrialSteps().train

    def out_of_memory_on_trial_0(arch, cfg, out_dir, **kwargs):
        if Path(out_dir).name == "0":
            raise MemoryError("cannot allocate 4 GiB")
        return real_train(arch, cfg, out_dir, **kwargs)

    summary = run_search(tiny_search(tmp_path / "oom", trials=1), steps=TrialSteps(train=out_of_memory_on_trial_0))
    assert summary.counts["failed"] == 1 and summary.finished == 1
    assert load(tmp_path / "oom").trials[0].user_attrs["fail_reason"] == "MemoryError: cannot allocate 4 GiB"
