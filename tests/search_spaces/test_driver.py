"""The search driver's own rules, on a real Optuna study (in memory) with cheap Python objectives.

The objectives play a script of outcomes (a result, a documented failure, a rejection, a bug), so
each rule is seen in isolation: the requested number of results, the epoch budget, the failure and
rejection streaks, what a trial records around the objective, the one log line per finished trial
and Optuna's failed-trial traceback kept off the output.
"""

from __future__ import annotations

import csv
import logging

import optuna

from rtseg_core import SearchError
from search_spaces import StudyDriver, StudyOptions, WorkerOptions
from search_spaces._optuna_setup import optuna_session
from search_spaces._outcomes import reject


class Scripted:
    """An objective that plays ``script``: "ok" (Dice = x, 2 epochs trained), "fail" (a documented
    failure), "reject" (too big), "stolen" (a result for a trial another worker already marked FAIL)
    or "bug" (a TypeError, which must stop the search)."""

    catch = (SearchError,)

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.calls = 0

    def check(self) -> None:
        pass

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        x = trial.suggest_float("x", 0.0, 1.0)
        what = self.script[self.calls]
        self.calls += 1
        if what == "ok":
            trial.set_user_attr("epochs_trained", 2)
            return (x,)
        if what == "fail":
            raise SearchError("the loss diverged")
        if what == "reject":
            reject(trial, "too big")
        if what == "stolen":  # another worker marks this trial FAIL (its heartbeat looked stale) before it ends
            trial.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            return (x,)
        raise TypeError("a bug in the objective")


def drive(tmp_path, script, *, trials, budget=None, failures=3, rejections=2):
    """Run ``script`` through a driver on an in-memory study; returns (study, trials run or the exception)."""
    driver = StudyDriver(
        tmp_path,
        study_name="driver",
        study=StudyOptions(trials=trials),
        workers=WorkerOptions(progress=False, max_consecutive_failures=failures, max_consecutive_rejections=rejections),
        sampler="random",
        population_size=2,
        seed=0,
        fields=["dice"],
        directions=["maximize"],
        threads=1,
    )
    driver.budget_epochs = budget  # what run() resolves from the storage; this study has none stored
    study = optuna.create_study(directions=["maximize"], sampler=optuna.samplers.RandomSampler(seed=0))
    try:
        with optuna_session():
            return study, driver.loop(study, Scripted(script))
    except Exception as exc:  # the test looks at which one
        return study, exc


def states(study):
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_the_loop_runs_until_the_requested_results_not_counting_rejected_or_failed(tmp_path):
    study, run = drive(tmp_path, ["ok", "reject", "fail", "ok", "ok"], trials=2)
    assert run == 4 and states(study) == ["COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
    trials = study.get_trials(deepcopy=False)
    assert [t.user_attrs["outcome"] for t in trials] == ["complete", "rejected", "failed", "complete"]
    assert trials[2].user_attrs["fail_reason"] == "SearchError: the loss diverged"
    assert all(t.user_attrs["stage"] and t.user_attrs["seconds"] >= 0 and "cpu_s" in t.user_attrs for t in trials)
    with open(tmp_path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == states(study) and rows[1]["reason"] == "rejected: too big"


def test_failures_in_a_row_stop_the_search_and_a_result_resets_the_count(tmp_path):
    study, error = drive(tmp_path, ["fail", "fail", "ok", "fail", "fail", "fail", "ok"], trials=5)
    assert isinstance(error, SearchError)
    assert "3 trials in a row failed; the last (trial 5) with: SearchError: the loss diverged" in str(error)
    assert states(study) == ["FAIL", "FAIL", "COMPLETE", "FAIL", "FAIL", "FAIL"]


def test_rejections_in_a_row_stop_the_search(tmp_path):
    study, error = drive(tmp_path, ["reject", "ok", "reject", "reject", "ok"], trials=5, rejections=2)
    assert isinstance(error, SearchError) and "2 sampled architectures in a row were rejected" in str(error)
    assert "the last: too big" in str(error) and states(study) == ["PRUNED", "COMPLETE", "PRUNED", "PRUNED"]


def test_the_epoch_budget_stops_proposing_trials(tmp_path):
    # Each result trains 2 epochs: the budget of 5 is reached after the third, far below --trials.
    study, run = drive(tmp_path, ["ok", "fail", "ok", "ok", "ok", "ok"], trials=10, budget=5)
    assert run == 4 and states(study) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]


def test_a_bug_stops_the_search_with_its_own_exception_and_no_optuna_traceback(tmp_path):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # Optuna's logger does not propagate to pytest's capture
    optuna_logger = logging.getLogger("optuna")
    optuna_logger.addHandler(handler)
    try:
        study, error = drive(tmp_path, ["fail", "bug"], trials=3)
    finally:
        optuna_logger.removeHandler(handler)
    assert isinstance(error, TypeError) and states(study) == ["FAIL", "FAIL"]
    assert study.get_trials(deepcopy=False)[1].user_attrs["fail_reason"] == "TypeError: a bug in the objective"
    assert not [r for r in records if "failed with" in r.getMessage()]  # shown once, where it is handled


def test_without_a_bar_each_finished_trial_is_one_log_line(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="search_spaces"):
        drive(tmp_path, ["ok", "reject", "fail", "ok"], trials=2)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("search_spaces.")]
    assert lines[0].startswith("trial 0 complete: dice ") and lines[0].endswith("; 1/2 finished")
    assert lines[1] == "trial 1 rejected: too big; 1/2 finished"
    assert "trial 2 failed while starting: SearchError: the loss diverged" in lines[2]  # the failure's warning
    assert lines[3] == "trial 2 failed: SearchError: the loss diverged; 1/2 finished"
    assert lines[4].startswith("trial 3 complete") and lines[4].endswith("; 2/2 finished") and len(lines) == 5


def test_the_stop_rule_needs_a_result_to_reset_not_a_rejection(tmp_path):
    # A rejection between failures does not break their streak (nor a failure a rejection streak).
    study, error = drive(tmp_path, ["fail", "reject", "fail", "fail"], trials=2, rejections=5)
    assert isinstance(error, SearchError) and "3 trials in a row failed" in str(error)
    assert states(study) == ["FAIL", "PRUNED", "FAIL", "FAIL"]


def test_a_result_for_a_trial_another_worker_failed_is_dropped_with_a_warning_and_the_search_goes_on(tmp_path, caplog):
    # Seen under load: a worker's heartbeat missed the grace period, another worker marked its trial FAIL,
    # and the owner died with Optuna's "Cannot tell a FAIL trial." traceback when its result came in.
    with caplog.at_level(logging.WARNING, logger="search_spaces"):
        study, run = drive(tmp_path, ["ok", "stolen", "ok"], trials=2)
    assert run == 3 and states(study) == ["COMPLETE", "FAIL", "COMPLETE"]
    warned = [r.getMessage() for r in caplog.records if "another worker" in r.getMessage()]
    assert len(warned) == 1 and "trial 1" in warned[0] and "result is dropped" in warned[0]
