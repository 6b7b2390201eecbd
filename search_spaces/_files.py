"""The study-level files a search writes next to ``trials/`` (read by ``reports`` without Optuna).

Paths and the JSON files go through :class:`rtseg_core.StudyDir`; ``history.csv`` is built here
because only the search knows Optuna's trials.

- ``study.json``: the settings, a :class:`rtseg_core.StudySettings` (objectives as
  ``[[field, direction], ...]``, constraints, target, data, sizes, sampler, seed, the strategy's
  part, search space, storage without password).
- ``history.csv``: one row per trial in number order: ``number``, ``name``, ``state``,
  ``datetime_start``, ``datetime_complete``, one column per objective (record field names),
  ``feasible``, ``params``, ``latency_ms``, ``epochs_trained``, ``cpu_s`` (CPU seconds of the worker
  process for the trial: training, evaluation, profiling), ``rung_dice`` (multi-fidelity studies
  only: the val Dice at each rung reached, ``epochs:dice;...``), ``reason`` (why it was stopped,
  rejected or failed) and ``config`` (the one-line summary).
- ``environment.json``: the host (``profiling``'s environment description) and when the search ran.

All three are rewritten atomically; with several workers the last writer wins, which is fine
because each writes the whole study as the shared storage sees it.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from profiling import describe_environment
from rtseg_core import StudyDir, StudySettings, atomic_write_text
from search_spaces._study import counts_towards_target, trial_feasible, trial_name

# User attributes copied into history.csv as columns (empty where a trial has none).
HISTORY_ATTRS = ("params", "latency_ms", "epochs_trained", "cpu_s")
STALE_REASON = "the worker stopped sending heartbeats (killed or lost) while the trial was at stage {stage!r}"


def write_study_json(study_dir: Path, settings: StudySettings) -> Path:
    return StudyDir(study_dir).write_settings(settings)


def write_environment(study_dir: Path, *, threads: int | None) -> Path:
    env = describe_environment(threads=threads)
    env["written"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return StudyDir(study_dir).write_environment(env)


def trial_reason(trial: optuna.trial.FrozenTrial) -> str:
    """Why a trial did not complete (empty for COMPLETE trials)."""
    attrs = trial.user_attrs
    if trial.state == TrialState.FAIL:
        if "fail_reason" in attrs:
            return str(attrs["fail_reason"])
        if "stage" in attrs:
            return STALE_REASON.format(stage=attrs["stage"])
        return "the worker stopped before the trial started (killed between creating it and its first heartbeat)"
    if trial.state == TrialState.PRUNED:
        if "rejected" in attrs:
            return f"rejected: {attrs['rejected']}"
        return str(attrs.get("pruned_reason", "pruned"))
    if trial.state == TrialState.RUNNING:
        return f"running (stage {attrs.get('stage', '?')})"
    return ""


def history_rows(study: optuna.Study, fields: list[str]) -> list[dict[str, Any]]:
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        row: dict[str, Any] = {
            "number": t.number,
            "name": trial_name(t),
            "state": t.state.name,
            "datetime_start": _iso(t.datetime_start),
            "datetime_complete": _iso(t.datetime_complete),
        }
        for i, field in enumerate(fields):
            value = t.values[i] if t.values is not None and len(t.values) == len(fields) else None
            row[field] = "" if value is None else value
        row["feasible"] = trial_feasible(t)
        row["counts"] = counts_towards_target(t)
        for key in HISTORY_ATTRS:
            if key not in row:
                value = t.user_attrs.get(key)
                row[key] = "" if value is None or (isinstance(value, float) and math.isnan(value)) else value
        if t.user_attrs.get("rung_dice"):  # issue 11: multi-fidelity studies only, e.g. "1:0.4123;3:0.6011"
            rungs = t.user_attrs["rung_dice"]
            row["rung_dice"] = ";".join(f"{k}:{float(rungs[k]):.4f}" for k in sorted(rungs, key=int))
        row["reason"] = trial_reason(t)
        row["config"] = t.user_attrs.get("summary", "")
        rows.append(row)
    return rows


def write_history(study_dir: Path, study: optuna.Study, fields: list[str]) -> Path:
    rows = history_rows(study, fields)
    header = ["number", "name", "state", "datetime_start", "datetime_complete", *fields, "feasible", "counts"]
    header += [k for k in HISTORY_ATTRS if k not in header]
    header += ["rung_dice"] if any("rung_dice" in r for r in rows) else []
    header += ["reason", "config"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(StudyDir(study_dir).history_csv, buf.getvalue())


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")
