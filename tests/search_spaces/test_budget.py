"""``search --budget-epochs``: a real tiny multi-fidelity search (32 px, one step per epoch) stops at the
epoch budget, counts the epochs of trials stopped at a rung, and a resume does not exceed it; every trial
records its CPU seconds in history.csv."""

from __future__ import annotations

import csv
import json
import logging
import subprocess

import optuna
import pytest

from rtseg_core import ConfigError
from rtseg_nas.cli._main import main
from search_spaces import STORED, SearchConfig

from .conftest import TINY_SPACE

BUDGET = 9  # seeded: trial 3 stops at rung 1, so the budget is spent after trial 4 only if it counts


def history(study):
    with open(study / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def epochs(rows):
    return sum(int(r["epochs_trained"] or 0) for r in rows)


def test_the_search_stops_at_the_epoch_budget_counting_stopped_trials_and_resume_adds_nothing(tmp_path, capsys):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(TINY_SPACE))
    study = tmp_path / "budget"
    argv = [
        "search", "--data", "synthetic:24", "--study", str(study), "--trials", "50", "--size", "32",
        "--steps-per-epoch", "1", "--batch-size", "4", "--target", "jetson-nano-estimate", "--sampler", "random",
        "--no-early-stop", "--fidelity", "1,2", "--eta", "2", "--train-threads", "1", "--heartbeat-interval", "1",
        "--latency-size", "32", "--space", str(space), "--budget-epochs", str(BUDGET),
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = history(study)
    trained = [r for r in rows if r["epochs_trained"]]
    total = epochs(rows)
    # Stopped at the budget, far below --trials (an upper bound), and only the last trial went past it.
    assert total >= BUDGET and epochs(trained[:-1]) < BUDGET and total <= BUDGET + 1
    assert len(trained) < 50
    # A trial stopped at rung 1 counts its one epoch (else the search would have gone on longer).
    stopped = [r for r in rows if r["state"] == "PRUNED" and r["epochs_trained"] == "1"]
    assert stopped and all(r["reason"].startswith("rung 1 ep: stopped") for r in stopped)
    assert f"epoch budget reached: {total} epochs trained by the study's trials, budget {BUDGET}" in out
    assert json.loads((study / "study.json").read_text())["budget_epochs"] == BUDGET
    # Every trial that ran records CPU seconds (training, evaluation, profiling), not only wall seconds.
    assert all(float(r["cpu_s"]) > 0 for r in trained)

    # Resume with the same budget: the storage's trials already spent it, nothing new runs.
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "0 run now" in out and f"epoch budget reached: {total} epochs" in out
    assert len(history(study)) == len(rows)
    # A larger budget continues from the epochs already trained, and stops at it again.
    argv[-1] = str(BUDGET + 2)
    assert main(argv) == 0
    more = history(study)
    assert len(more) > len(rows)
    assert BUDGET + 2 <= epochs(more) <= BUDGET + 3
    assert epochs([r for r in more if r["epochs_trained"]][:-1]) < BUDGET + 2


def test_the_budget_is_checked_and_left_out_means_the_stored_one(tmp_path):
    for bad in (-1, 0, 2.5):  # 0 is the command line's "none"; the library takes None for that
        with pytest.raises(ConfigError, match="--budget-epochs"):
            SearchConfig.from_options(tmp_path, budget_epochs=bad)
    assert SearchConfig.from_options(tmp_path).study.budget_epochs is STORED
    assert SearchConfig.from_options(tmp_path, budget_epochs=None).study.budget_epochs is None
    assert SearchConfig.from_options(tmp_path, budget_epochs=12).study.budget_epochs == 12


def test_two_workers_on_one_postgres_study_share_the_budget(tmp_path, postgres_url, tiny_space_file, tiny_search):
    from search_spaces import run_search

    from .test_distributed import REPO, search_command, worker_env

    budget = 4
    run_search(tiny_search(tmp_path / "creator", trials=0, storage=postgres_url, study_name="budget"))
    # A generous grace period, as in test_distributed: a loaded machine's live worker may miss a 1 s heartbeat.
    extra = ["--trials", "50", "--epochs", "1", "--steps-per-epoch", "1", "--heartbeat-interval", "1",
             "--grace-period", "30", "--storage", postgres_url, "--study-name", "budget",
             "--budget-epochs", str(budget)]  # fmt: skip
    procs = [
        subprocess.Popen(
            search_command(tmp_path / f"worker{i}", tiny_space_file, *extra),
            cwd=REPO,
            env=worker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=180)[0].decode(errors="replace") for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
        assert "epoch budget reached" in out
    storage = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    trials = optuna.load_study(study_name="budget", storage=storage).trials
    spent = sum(t.user_attrs.get("epochs_trained", 0) for t in trials)
    # Counted from the storage: each worker stops on the other's epochs too (per process, it would be 2 x 4).
    # One-epoch trials: at most one in flight per worker when the count was below the budget.
    assert budget <= spent <= budget + 1
    assert all(t.user_attrs["cpu_s"] > 0 for t in trials if t.user_attrs.get("epochs_trained"))


def test_a_resumed_search_keeps_the_stored_budget_unless_it_gives_another(tmp_path, tiny_search, caplog):
    from search_spaces import run_search

    study = tmp_path / "kept"
    first = run_search(tiny_search(study, trials=20, budget_epochs=2))  # one epoch per trial
    assert first.epochs_trained == 2 and first.budget_reached and first.trials_run == 2
    with caplog.at_level(logging.INFO, logger="search_spaces"):
        again = run_search(tiny_search(study, trials=20))  # no budget given (the CLI without --budget-epochs)
    assert again.trials_run == 0 and again.budget_epochs == 2
    assert "keeping the study's epoch budget of 2 epochs" in caplog.text
    assert json.loads((study / "study.json").read_text())["budget_epochs"] == 2
    raised = run_search(tiny_search(study, trials=20, budget_epochs=3))
    assert raised.trials_run == 1 and raised.epochs_trained == 3
    assert run_search(tiny_search(study, trials=20)).budget_epochs == 3  # the one given last is kept now
    removed = run_search(tiny_search(study, trials=4, budget_epochs=None))  # --budget-epochs 0
    assert removed.budget_epochs is None and removed.finished == 4 and removed.trials_run == 1
    assert run_search(tiny_search(study, trials=4)).budget_epochs is None
