"""Validating a search's front: real searches, real kills, real SQLite and PostgreSQL storages."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from optuna.trial import TrialState

from rtseg_core import CandidateRecord, read_json
from search_spaces import run_search

REPO = Path(__file__).resolve().parents[2]
VALIDATE = ["--size", "32", "--batch-size", "4", "--latency-size", "32", "--rounds", "3", "--warmup", "1",
            "--heartbeat-interval", "1", "--grace-period", "2"]  # fmt: skip


def validate_command(study: Path, *extra: str) -> list[str]:
    return [sys.executable, "run.py", "validate", "--study", str(study), *VALIDATE, *extra]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def validate_in_process(capsys, caplog, study: Path, *extra: str, rc: int = 0) -> SimpleNamespace:
    """``validate`` through rtseg_nas.cli.main in this process (no interpreter start-up, no re-import):
    for the runs that are not about the process itself (kills stay subprocesses). ``stderr`` holds the
    printed error lines and the verbs' log records (INFO and up), as the CLI writes both to stderr."""
    from rtseg_nas.cli import main

    capsys.readouterr()
    caplog.clear()
    caplog.set_level(logging.INFO)
    code = main(validate_command(study, *extra)[2:])
    out, err = capsys.readouterr()
    assert code == rc, out[-2000:] + err[-3000:] + caplog.text[-2000:]
    return SimpleNamespace(stdout=out, stderr=err + caplog.text)


def validate_trials(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=f"{name}-validate", storage=storage).get_trials(deepcopy=False)


def test_validate_resumes_after_a_kill_and_skips_finished_candidates(tmp_path, searched_study, capsys, caplog):
    study = tmp_path / "nas"
    template, summary = searched_study(3)  # a copy of the session's tiny 3-trial search
    shutil.copytree(template, study)
    expected = {m.name for m in summary.front} | {"paper"}
    # Long enough that the kill lands inside a training (epochs of 17 tiny images take well under a second).
    proc = subprocess.Popen(validate_command(study, "--epochs", "25"), cwd=REPO, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    root = study / "validated"
    deadline = time.time() + 300
    while time.time() < deadline and not any(root.glob("*/checkpoint.pt")):
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted = [p.parent for p in root.glob("*/checkpoint.pt") if not (p.parent / "trained.json").exists()]
    assert interrupted, "the kill should land inside a candidate's training"
    before = {p.name: torch.load(p / "checkpoint.pt", weights_only=True)["meta"]["history"][0] for p in interrupted}

    # The kill needs a process; the resume and the reruns do not (the CLI's parsing and output are the same).
    validate_in_process(capsys, caplog, study, "--epochs", "25")
    records = {p.parent.name: CandidateRecord.from_dict(read_json(p)) for p in root.glob("*/candidate.json")}
    assert set(records) == expected
    for r in records.values():
        assert r.source == "validated" and r.split == "test" and r.parent == r.name and "25 epochs" in r.recipe
        # latency on the study's own target (the tiny search's Jetson estimate), labelled so
        assert (r.latency_kind, r.target) == ("estimated", "jetson-nano-estimate") and r.height == 32
    for name, first_epoch in before.items():
        # Resumed from its checkpoint: epoch 1 was not trained again (identical log entry), all 25 epochs exist.
        history = read_json(root / name / "metrics.json")["epochs"]
        assert history[0] == first_epoch and len(history) == 25
    trials = validate_trials(f"sqlite:///{study / 'study.db'}", "nas")
    assert any(t.state == TrialState.FAIL for t in trials)  # the killed worker's claim
    complete = [t.user_attrs["candidate"] for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(complete) == sorted(expected)  # each candidate validated exactly once

    stamps = {p: p.stat().st_mtime_ns for p in root.glob("*/trained.json")}
    again = validate_in_process(capsys, caplog, study, "--epochs", "25")
    assert "trained now: none" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in root.glob("*/trained.json")} == stamps
    other = validate_in_process(capsys, caplog, study, "--epochs", "3", rc=2)
    assert "budget" in other.stderr  # a different budget is refused, not mixed


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_workers_validate_one_study_each_candidate_once(tmp_path, tiny_search, backend, request):
    study = tmp_path / "shared"
    if backend == "postgres":
        storage = request.getfixturevalue("postgres_url")
        name = f"shared-{os.getpid()}-{time.monotonic_ns()}"
        extra = ["--storage", storage, "--study-name", name]
        summary = run_search(tiny_search(study, trials=4, storage=storage, study_name=name))
        url = storage.replace("postgresql://", "postgresql+psycopg://")
    else:
        name, extra = "shared", []
        summary = run_search(tiny_search(study, trials=4))
        url = f"sqlite:///{study / 'study.db'}"
    expected = {m.name for m in summary.front} | {"paper"}
    # A generous grace period: on a loaded machine a live worker's 1 s heartbeat may lag by seconds.
    cmd = [*validate_command(study, "--epochs", "2", *extra), "--grace-period", "30"]
    workers = [subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]  # fmt: skip
    outs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, f"{out[-1500:]}\n{err[-3000:]}"
    trials = validate_trials(url, name)
    complete = [t.user_attrs["candidate"] for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(complete) == sorted(expected)  # no candidate trained twice, none left out
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    records = {p.parent.name for p in (study / "validated").glob("*/candidate.json")}
    assert records == expected
    for out, _ in outs:  # every worker times and reports all candidates, whoever trained them
        assert all(n in out for n in expected)


def test_the_budget_is_logged_as_a_sentence_not_a_dict():
    from validate import ValidateConfig
    from validate._config import describe_budget

    text = describe_budget(ValidateConfig(study_dir="s", finetune_epochs=2).budget("synthetic:400"))
    assert text == (
        "30 epoch(s) x 256 px, batch 8, lr 0.001, data seed 0, on synthetic:400, test split, "
        "2 fine-tune epoch(s) for re-applied variants"
    )


def test_a_finished_result_of_another_budget_or_seed_is_refused_naming_what_differs(tmp_path):
    from rtseg_core import EvalMetrics, SettingsMismatchError, ValidatedResult
    from validate import ValidateConfig
    from validate._config import check_finished

    budget = ValidateConfig(study_dir="s", epochs=2).budget("synthetic:40")
    done = ValidatedResult(candidate={"candidate": "paper"}, budget=budget, epochs_trained=2,
                           test=EvalMetrics(0.9, 0.85, 0.95, 3.0), val_dice_last_epoch=0.9, seed=1)  # fmt: skip
    where = {"path": tmp_path / "trained.json", "work": tmp_path, "fix": "repeat the original options"}
    check_finished(done, budget, 1, **where)  # the same budget and seed: reused
    with pytest.raises(SettingsMismatchError, match="epochs: 2 before, 3 in this run"):
        check_finished(done, budget | {"epochs": 3}, 1, **where)
    with pytest.raises(SettingsMismatchError, match="seed: 1 before, 2 in this run"):
        check_finished(done, budget, 2, **where)
