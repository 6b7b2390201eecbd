"""Searches that outlive their workers: SIGKILL mid-trial then resume, and two workers on one PostgreSQL study.

Workers are real ``python run.py search`` processes; the storage is a real SQLite file or a real
PostgreSQL server on loopback (see ``conftest.postgres_url``).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search_spaces import run_search

REPO = Path(__file__).resolve().parents[2]
optuna.logging.set_verbosity(optuna.logging.WARNING)


EPOCHS = 25  # the killed run's epochs per trial (see the kill test)


def search_command(study_dir: Path, space_file: Path, *extra: str) -> list[str]:
    """The CLI form of the ``tiny_search`` settings (conftest.TINY_SEARCH)."""
    return [
        sys.executable, "run.py", "search", "--data", "synthetic:24", "--study", str(study_dir), "--size", "32",
        "--batch-size", "4", "--target", "jetson-nano-estimate", "--sampler", "random", "--seed", "0",
        "--latency-size", "32", "--no-early-stop", "--space", str(space_file), "--no-progress", *extra,
    ]  # fmt: skip


def worker_env() -> dict[str, str]:
    # One intra-op thread per worker: two workers share the runner's cores.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_sigkilled_worker_leaves_a_fail_and_the_study_resumes_intact(tmp_path, tiny_space_file, tiny_search):
    study_dir = tmp_path / "killed"
    # The kill must land while trial 1 trains. A 2-epoch trial lasted under a second and a clean-clone run's
    # poller missed it; at EPOCHS epochs a trial trains for several seconds, so even a loaded machine's
    # poller sees trial 1 running many times over (the test waits for the state, never for a time).
    cmd = search_command(study_dir, tiny_space_file, "--trials", "2", "--epochs", str(EPOCHS), "--steps-per-epoch", "1",
                         "--heartbeat-interval", "1", "--grace-period", "3")  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"sqlite:///{study_dir / 'study.db'}"
    killed_at = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if not (study_dir / "study.db").exists():
                continue
            try:
                trials = optuna.load_study(study_name="killed", storage=url).get_trials(deepcopy=False)
            except Exception:  # the worker is still creating the tables or the study
                continue
            states = {t.number: t.state for t in trials}
            running = next((t for t in trials if t.number == 1 and t.state == TrialState.RUNNING), None)
            # Kill after trial 1's first epoch: it is mid-training then, with EPOCHS - 1 epochs to go.
            if states.get(0) == TrialState.COMPLETE and running and running.user_attrs.get("epochs_trained"):
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = {t.number: t.datetime_complete for t in trials}
                break
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        output = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert killed_at is not None, f"never saw trial 1 running; worker output:\n{output[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    candidate = (study_dir / "trials/0/candidate.json").read_bytes()

    # Resume in this process with the same settings: trial 1 turns FAIL once its heartbeat is 3 s old.
    summary = run_search(tiny_search(study_dir, epochs=EPOCHS, steps_per_epoch=1, grace_period=3))
    trials = optuna.load_study(study_name="killed", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].datetime_complete == killed_at[0]  # the completed trial is untouched
    assert (study_dir / "trials/0/candidate.json").read_bytes() == candidate
    assert summary.finished == 2 and summary.counts["failed"] == 1 and summary.trials_run == 1
    with open(study_dir / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[1]["state"] == "FAIL" and "stopped sending heartbeats" in rows[1]["reason"]


def test_two_workers_share_one_postgres_study_without_duplicates(tmp_path, postgres_url, tiny_space_file, tiny_search):
    n = 3
    # Create the study once, before the workers start (two creators could collide).
    created = run_search(tiny_search(tmp_path / "creator", trials=0, storage=postgres_url, study_name="shared"))
    assert created.trials_run == 0
    procs = [
        subprocess.Popen(
            search_command(
                tmp_path / f"worker{i}",
                tiny_space_file,
                "--trials",
                str(n),
                "--epochs",
                "1",
                "--steps-per-epoch",
                "1",
                "--heartbeat-interval",
                "1",
                # A generous grace period: on a loaded machine (two xdist workers, two search workers, 2 cores)
                # a live worker's 1 s heartbeat may lag by seconds, and the other worker would fail its trial.
                "--grace-period",
                "30",
                "--storage",
                postgres_url,
                "--study-name",
                "shared",
            ),  # fmt: skip
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
        assert "feasible Pareto front" in out and f"{n}/{n} finished" in out

    storage = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == n
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    # Anything else is a trial a worker asked for while the last one was taken, and did not run.
    for t in trials:
        if t.state != TrialState.COMPLETE:
            assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"].startswith("Surplus"), t
    assert any(t.user_attrs.get("reference") == "paper" for t in complete)
    # Each finished trial was run by exactly one worker: one candidate.json across the workers' folders.
    for t in complete:
        owners = [
            i for i in range(2) if (tmp_path / f"worker{i}" / "trials" / str(t.number) / "candidate.json").exists()
        ]
        assert len(owners) == 1, (t.number, owners)


def test_a_worker_killed_before_its_first_heartbeat_blocks_nothing_and_the_reference_is_requeued(tmp_path, tiny_search):
    study_dir = tmp_path / "zombie"
    url = f"sqlite:///{study_dir / 'study.db'}"
    run_search(tiny_search(study_dir, trials=0))  # creates the study with the paper queued
    # What a worker killed right after Optuna's ask() leaves: a RUNNING trial without heartbeat
    # (fail_stale_trials never fails those), and here it had taken the queued reference.
    orphan = optuna.load_study(study_name="zombie", storage=url).ask()
    assert orphan.user_attrs["reference"] == "paper"

    summary = run_search(tiny_search(study_dir, trials=1, grace_period=2))
    trials = optuna.load_study(study_name="zombie", storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].user_attrs["reference"] == "paper" and summary.reference.trial == 1
    with open(study_dir / "history.csv", newline="") as fh:
        assert "before the trial started" in list(csv.DictReader(fh))[0]["reason"]


def test_ctrl_c_ends_a_search_with_one_line_that_says_how_to_resume(tmp_path, tiny_space_file):
    study_dir = tmp_path / "ctrl-c"
    cmd = search_command(study_dir, tiny_space_file, "--trials", "2", "--epochs", str(EPOCHS), "--steps-per-epoch", "1",
                         "--heartbeat-interval", "1")  # fmt: skip
    # SIGINT as a terminal sends it; a worker started from a background job would inherit it ignored.
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    url = f"sqlite:///{study_dir / 'study.db'}"
    sent = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if not (study_dir / "study.db").exists():
                continue
            try:
                trials = optuna.load_study(study_name="ctrl-c", storage=url).get_trials(deepcopy=False)
            except Exception:  # the worker is still creating the tables or the study
                continue
            if trials and trials[0].state == TrialState.RUNNING and trials[0].user_attrs.get("epochs_trained"):
                proc.send_signal(signal.SIGINT)  # mid-training, EPOCHS - 1 epochs to go
                sent = True
                break
    finally:
        if not sent and proc.poll() is None:
            proc.kill()
        out, err = (b.decode(errors="replace") for b in proc.communicate(timeout=60))
    assert sent, f"never saw trial 0 training; worker output:\n{out[-2000:]}{err[-3000:]}"
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    (line,) = [x for x in err.splitlines() if "interrupted" in x]
    assert line == (
        f"interrupted: trial 0 was running and is recorded as failed; the study's 0 finished trials are kept in "
        f"{study_dir}: run the same command again to resume"
    )
    (trial,) = optuna.load_study(study_name="ctrl-c", storage=url).trials
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == "interrupted (Ctrl-C) while training"
