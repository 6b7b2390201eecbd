"""Reading a study directory into tables: candidates, search settings, trial history and environment.

The folder's layout and its files belong to :class:`rtseg_core.StudyDir` (the search and
compression write through it too); this module turns them into pandas tables. Everything here
reads files only, so a report needs neither Optuna nor the search code.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rtseg_core import (
    CandidateRecord,
    ConfigError,
    StudyDir,
    StudySettings,
    check_objectives,
    read_candidate,
    study_objectives,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CANDIDATE_COLUMNS",
    "candidates_frame",
    "check_objectives",
    "load_candidates",
    "load_environment",
    "load_history",
    "load_reference",
    "load_study_settings",
    "read_candidate",
    "study_constraints",
    "study_objectives",
]

CANDIDATE_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(CandidateRecord))

_FLOAT_COLUMNS = ("dice", "dice_ps", "dice_fh", "delta_aop_deg", "latency_ms", "fps")
_INT_COLUMNS = ("params", "macs", "threads", "height", "width", "trial")
_SOURCE_ORDER = {"reference": 0, "trial": 1, "compressed": 2}


def load_candidates(study_dir: str | os.PathLike) -> pd.DataFrame:
    """All candidates of a study as one DataFrame, one row per ``candidate.json``, one column per field.

    Columns are exactly the fields of :class:`CandidateRecord`, in field order. Float fields use NaN
    and integer fields (``params``, ``macs``, ``threads``, ``height``, ``width``, ``trial``) pandas'
    nullable ``Int64`` for missing values. Rows come reference first, then trials by number, then
    compressed variants by name; the index is a plain ``RangeIndex``.

    Raises:
        ConfigError: the folder does not exist, a file is not a valid CandidateRecord (the message
            names the file), or two files use the same candidate name (parents are found by name).
    """
    study = StudyDir.existing(study_dir)
    records = [record for record, _ in study.read_candidates()]
    logger.debug("%s: %d candidate(s) read", study.root, len(records))
    return candidates_frame(records)


def candidates_frame(records: Iterable[CandidateRecord]) -> pd.DataFrame:
    """The DataFrame :func:`load_candidates` returns, built from records already in memory."""
    records = sorted(records, key=lambda r: (_SOURCE_ORDER.get(r.source, 3), _trial_key(r.trial), r.name))
    df = pd.DataFrame([{c: getattr(r, c) for c in CANDIDATE_COLUMNS} for r in records], columns=list(CANDIDATE_COLUMNS))
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in _INT_COLUMNS:
        df[col] = pd.array([None if _missing(v) else int(v) for v in df[col]], dtype="Int64")
    df["feasible"] = df["feasible"].astype(bool)
    for col in ("name", "source", "dataset", "split", "latency_kind", "target", "device", "backend", "precision"):
        df[col] = df[col].astype(object)
    # object dtype keeps None (pandas 3 would turn a str column's None into NaN)
    df["parent"] = pd.Series([None if _missing(v) else str(v) for v in df["parent"]], index=df.index, dtype=object)
    return df.reset_index(drop=True)


def load_study_settings(study_dir: str | os.PathLike) -> StudySettings | None:
    """``study.json`` (:meth:`rtseg_core.StudyDir.read_settings`); None, with a warning, when the file is missing."""
    return StudyDir.existing(study_dir).read_settings()


def study_constraints(settings: StudySettings | None) -> dict[str, float | None]:
    """``min_fps``, ``max_latency_ms`` and ``max_params`` from the settings; ``None`` where unset (or no settings)."""
    keys = ("min_fps", "max_latency_ms", "max_params")
    return {k: None for k in keys} if settings is None else settings.constraints.to_dict()


def load_environment(study_dir: str | os.PathLike) -> dict[str, Any]:
    """``environment.json`` as a dict; ``{}`` when the study has none."""
    return StudyDir.existing(study_dir).read_environment()


def load_reference(study_dir: str | os.PathLike) -> dict[str, Any]:
    """``STUDY_DIR/reference.json`` (see :meth:`rtseg_core.StudyDir.read_reference`), or ``{}``."""
    return StudyDir(study_dir).read_reference()


def load_history(
    study_dir: str | os.PathLike,
    objectives: Iterable[tuple[str, str]],
    *,
    candidates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per trial, in trial order: columns ``number``, ``state``, ``feasible`` and one per objective.

    From ``history.csv`` when the study has one. Its columns are matched leniently so that a file
    written from Optuna's ``trials_dataframe()`` also reads: the trial number from ``number`` (or
    ``trial``), ``state`` (``COMPLETE`` or ``TrialState.COMPLETE``; all COMPLETE if absent),
    ``feasible`` (all feasible if absent, with a warning) and each objective from a column named
    like it, ``values_<name>`` or ``values_<i>`` (i = its position in ``objectives``).

    Without ``history.csv`` the history is derived from the trial candidates (sources ``trial`` and
    ``reference`` with a trial number), all COMPLETE, ordered by trial number; ``candidates`` saves
    reading them again.
    """
    study = StudyDir.existing(study_dir)
    study_dir = study.root
    objectives = check_objectives(objectives)
    names = [n for n, _ in objectives]
    path = study.history_csv
    if not path.exists():
        df = load_candidates(study_dir) if candidates is None else candidates
        rows = df[df["source"].isin(["trial", "reference"]) & df["trial"].notna()]
        missing = [n for n in names if n not in rows.columns]
        if missing:
            raise ConfigError(
                f"{study_dir}: objective(s) {missing} are not CandidateRecord fields {list(CANDIDATE_COLUMNS)}"
            )
        out = pd.DataFrame(
            {
                "number": rows["trial"].astype(int).to_numpy(),
                "state": "COMPLETE",
                "feasible": rows["feasible"].astype(bool).to_numpy(),
                **{n: pd.to_numeric(rows[n], errors="coerce").astype(float).to_numpy() for n in names},
            }
        )
        return out.sort_values("number", kind="stable").reset_index(drop=True)

    raw = read_history_csv(path)
    number_col = _first_column(raw, ("number", "trial", "trial_number"))
    if number_col is None:
        raise ConfigError(
            f"{path}: needs a trial-number column 'number' (or 'trial'); found columns {list(raw.columns)}"
        )
    out = pd.DataFrame({"number": pd.to_numeric(raw[number_col], errors="coerce")})
    if out["number"].isna().any():
        raise ConfigError(f"{path}: column {number_col!r} has non-numeric or empty trial numbers")
    out["number"] = out["number"].astype(int)
    if "state" in raw.columns:
        out["state"] = [str(s).rsplit(".", 1)[-1].upper() for s in raw["state"]]
    else:
        out["state"] = "COMPLETE"
    if "feasible" in raw.columns:
        out["feasible"] = [_parse_bool(v, path) for v in raw["feasible"]]
    else:
        logger.warning("%s: no 'feasible' column; treating every trial as feasible for the hypervolume", path)
        out["feasible"] = True
    for i, name in enumerate(names):
        col = _first_column(raw, (name, f"values_{name}", f"value_{name}", f"values_{i}"))
        if col is None:
            raise ConfigError(
                f"{path}: no column for objective {name!r} (looked for {name!r}, 'values_{name}', 'values_{i}'); "
                f"found columns {list(raw.columns)}"
            )
        out[name] = pd.to_numeric(raw[col], errors="coerce").astype(float)
    return out.sort_values("number", kind="stable").reset_index(drop=True)


def read_history_csv(path: Path, *, required: Iterable[str] = (), **read_csv_options: Any) -> pd.DataFrame:
    """A study's ``history.csv`` as pandas reads it with ``read_csv_options`` (the one reader of that file).

    ``required``: the columns the caller needs; one that is absent is a ConfigError naming the file
    and the column, as is a file that is not CSV.
    """
    try:
        df = pd.read_csv(path, **read_csv_options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as CSV ({exc})") from None
    return require_columns(df, path, required)


def require_columns(df: pd.DataFrame, path: Path, required: Iterable[str]) -> pd.DataFrame:
    """``df`` (read from ``path``) when it has every ``required`` column, else a ConfigError naming one missing."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: no column {missing[0]!r} (needed here); found columns {list(df.columns)}")
    return df


def _first_column(df: pd.DataFrame, candidates: Iterable[str]) -> str | None:
    for c in candidates:
        if c in df.columns:
            return c
    return None


def _parse_bool(value: Any, path: Path) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and not _missing(value) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "", "nan"):
        return False
    raise ConfigError(f"{path}: column 'feasible' must hold True/False, got {value!r}")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _trial_key(trial: Any) -> float:
    return float("inf") if _missing(trial) else float(trial)
