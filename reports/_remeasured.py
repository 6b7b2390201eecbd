"""PREDICTED beside MEASURED: what a report says about a study whose latencies came from a kernel table.

A search run with ``--target predict:TABLE`` records PREDICTED latencies (kernel sums from a table
built on a target), never timed. ``latency-table remeasure`` times that search's feasible (Dice,
latency) front for real and writes ``STUDY/remeasured.json`` (read by :class:`rtseg_core.StudyDir`);
:func:`remeasured_info` turns it into the report's info object. A study with predicted latencies
and no such file gets the same object without rows: the report then says plainly that its
latencies are predictions and gives the command that measures them. Studies without predictions
get None (no section).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rtseg_core import PREDICT_PREFIX, PREDICTED, ConfigError, StudyDir, nondominated_mask, read_json

WITHIN = 10.0  # the accuracy band: |error| <= 10 %


@dataclass(frozen=True)
class RemeasuredRow:
    """One candidate of the front: its PREDICTED latency, the MEASURED one, and the conditions of both."""

    name: str
    dice: float | None
    predicted_ms: float
    measured_ms: float
    error_percent: float  # 100 (predicted - measured) / measured, as the file has it
    measured_iqr_ms: float | None
    table: str  # the table file the prediction came from
    table_key: str  # the table's key, described (device, runtime, precision, threads, batch, opset, libraries)
    measured_on: str  # the measurement's conditions, described
    measured_when: str  # its timestamp and the load average before it
    conditions_differ: tuple[str, ...]  # "threads: table 1 vs measured 2", ...: the two numbers are not comparable
    stale: bool  # the candidate's PREDICTED latency is no longer the one in the file (the study changed since)


@dataclass(frozen=True)
class RemeasuredInfo:
    """The report's predicted-vs-measured section; ``rows`` is empty when the study was not remeasured."""

    path: Path  # STUDY/remeasured.json
    predicted: tuple[str, ...]  # candidates whose latency is PREDICTED
    predicted_conditions: tuple[str, ...]  # how they were predicted: target, device, precision, threads, input
    table_keys: tuple[str, ...] = ()  # "TABLE: its key" for each table the predictions came from
    rows: tuple[RemeasuredRow, ...] = ()
    not_remeasured: tuple[str, ...] = ()  # on the current predicted (Dice, latency) front, absent from the file
    command: str = ""  # the command that (re)measures the front
    missing: tuple[str, ...] = field(default=())  # rows whose candidate is no longer in the study

    @property
    def remeasured(self) -> bool:
        return bool(self.rows)

    @property
    def errors(self) -> np.ndarray:
        return np.array([r.error_percent for r in self.rows], dtype=float)

    @property
    def mape(self) -> float | None:
        return float(np.mean(np.abs(self.errors))) if self.rows else None

    @property
    def within(self) -> float | None:
        """Share of rows whose prediction is within +-:data:`WITHIN` % of the measurement."""
        return float(np.mean(np.abs(self.errors) <= WITHIN)) if self.rows else None

    @property
    def spearman(self) -> float | None:
        """Rank correlation of predicted and measured (3 rows at least; None when a side has no spread)."""
        if len(self.rows) < 3:
            return None
        p = pd.Series([r.predicted_ms for r in self.rows]).rank()
        m = pd.Series([r.measured_ms for r in self.rows]).rank()
        rho = p.corr(m)
        return None if rho is None or math.isnan(rho) else float(rho)

    def summary(self) -> dict[str, Any]:
        """The section in ``summary.json``."""
        return {
            "state": "remeasured" if self.remeasured else "predicted, not remeasured",
            "file": str(self.path) if self.remeasured else None,
            "predicted_candidates": list(self.predicted),
            "predicted_conditions": list(self.predicted_conditions),
            "table_keys": list(self.table_keys),
            "rows": [
                {
                    "name": r.name,
                    "dice": r.dice,
                    "predicted_ms": r.predicted_ms,
                    "measured_ms": r.measured_ms,
                    "error_percent": r.error_percent,
                    "table": r.table,
                    "table_key": r.table_key,
                    "measured_on": r.measured_on,
                    "measured_when": r.measured_when,
                    "conditions_differ": list(r.conditions_differ),
                    "stale": r.stale,
                }
                for r in self.rows
            ],
            "mape_percent": self.mape,
            "within_10_percent": self.within,
            "spearman": self.spearman,
            "not_remeasured": list(self.not_remeasured),
            "missing": list(self.missing),
            "remeasure_command": self.command,
        }


def remeasured_info(study_dir: str | Path, candidates: pd.DataFrame) -> RemeasuredInfo | None:
    """The section for a study: None when no latency in it was PREDICTED and it has no ``remeasured.json``.

    ``candidates`` is :func:`reports.load_candidates` of the study. Raises :class:`ConfigError`
    naming ``remeasured.json`` when the file is not what ``latency-table remeasure`` writes.
    """
    study = StudyDir(study_dir)
    data = study.read_remeasured()
    predicted = candidates[candidates["latency_kind"] == PREDICTED] if len(candidates) else candidates
    if data is None and predicted.empty:
        return None
    tables = sorted({str(t).removeprefix(PREDICT_PREFIX) for t in predicted["target"]}) if len(predicted) else []
    names_now = {str(n) for n in candidates["name"]} if len(candidates) else set()
    latency = {str(n): float(v) for n, v in zip(predicted["name"], predicted["latency_ms"]) if pd.notna(v)}
    rows = tuple(_row(row, i, study, latency) for i, row in enumerate((data or {}).get("rows", [])))
    names = {r.name for r in rows}
    key = _key_of(tables[0]) if tables else None
    return RemeasuredInfo(
        path=study.remeasured_json,
        predicted=tuple(str(n) for n in predicted["name"]) if len(predicted) else (),
        predicted_conditions=_predicted_conditions(predicted),
        table_keys=tuple(f"{t}: {describe_key(_key_of(t))}" for t in tables),
        rows=rows,
        not_remeasured=tuple(n for n in _predicted_front(predicted) if n not in names),
        command=_command(study.root, key),
        missing=tuple(r.name for r in rows if r.name not in names_now),
    )


def describe_key(key: dict[str, Any] | None) -> str:
    """A table key (``TableKey.to_dict()``) in words, as ``TableKey.describe`` words it (plus its target)."""
    if not isinstance(key, dict):
        return "unknown (the table file is gone and remeasured.json names no key)"
    libs = ", ".join(f"{k} {v}" for k, v in sorted((key.get("libraries") or {}).items()) if v)
    thr = "runtime default" if key.get("threads") is None else str(key.get("threads"))
    return (
        f"built on {key.get('target')}: {key.get('device')}; {key.get('runtime')} {key.get('precision')}, "
        f"threads {thr}, batch {key.get('batch')}, opset {key.get('opset')} ({libs})"
    )


def _row(row: dict[str, Any], i: int, study: StudyDir, latency: dict[str, float]) -> RemeasuredRow:
    measured = row.get("measured") or {}
    if not isinstance(measured, dict):
        raise ConfigError(f"{study.remeasured_json}: rows[{i}] ({row['name']}): 'measured' must be an object")
    predicted_ms, measured_ms = float(row["predicted_ms"]), float(row["measured_ms"])
    error = row.get("error_percent")
    if isinstance(error, bool) or not isinstance(error, int | float):  # not written: the file's own definition
        error = 100.0 * (predicted_ms - measured_ms) / measured_ms
    key = row.get("table_key")
    table = str(row.get("table") or str(row.get("predicted_target", "")).removeprefix(PREDICT_PREFIX))
    if not isinstance(key, dict) and table:
        key = _key_of(table)
    current = latency.get(row["name"])
    dice = row.get("dice")
    return RemeasuredRow(
        name=row["name"],
        dice=float(dice) if isinstance(dice, int | float) and not isinstance(dice, bool) else None,
        predicted_ms=predicted_ms,
        measured_ms=measured_ms,
        error_percent=float(error),
        measured_iqr_ms=_float(row.get("measured_iqr_ms")),
        table=table,
        table_key=describe_key(key),
        measured_on=_describe_measured(measured),
        measured_when=_describe_when(measured, row.get("load_average_1m")),
        conditions_differ=_differences(key, measured),
        stale=current is not None and not math.isclose(current, predicted_ms, rel_tol=1e-9),
    )


def _describe_measured(m: dict[str, Any]) -> str:
    thr = "runtime default" if m.get("threads") is None else m.get("threads")
    h = m.get("height")
    size = f"{h}x{m.get('width', h)}" if h is not None else "?"
    parts = [
        f"{m.get('target', '?')}: {m.get('device', '?')}",
        f"{m.get('backend', '?')}" + (f" ({m['provider']})" if m.get("provider") else ""),
        str(m.get("precision", "precision not recorded")),
        f"threads {thr}",
        f"input 1x1x{size}",
        f"median of {m.get('runs', '?')} runs",
    ]
    return ", ".join(parts)


def _describe_when(m: dict[str, Any], load: Any) -> str:
    parts = [str(m["timestamp"])] if m.get("timestamp") else []
    if isinstance(load, int | float) and not isinstance(load, bool):
        parts.append(f"load average {load:.2f} before timing")
    return ", ".join(parts)


def _differences(key: Any, measured: dict[str, Any]) -> tuple[str, ...]:
    # A prediction for one target checked against a measurement on another says nothing about its accuracy.
    if not isinstance(key, dict):
        return ()
    out = []
    for name in ("target", "threads", "precision"):
        if name in measured and name in key and key[name] != measured[name]:
            out.append(f"{name}: table {key[name]!r} vs measured {measured[name]!r}")
    return tuple(out)


def _predicted_conditions(predicted: pd.DataFrame) -> tuple[str, ...]:
    if predicted.empty:
        return ()
    cols = ["target", "device", "backend", "precision", "threads", "height", "width"]
    out = []
    for t in predicted[cols].astype(str).drop_duplicates().itertuples(index=False):
        out.append(
            f"{t.target}: {t.device}, {t.backend} {t.precision}, threads {t.threads}, input {t.height}x{t.width}"
        )
    return tuple(out)


def _predicted_front(predicted: pd.DataFrame) -> list[str]:
    # The candidates `latency-table remeasure` times: feasible trials, non-dominated in (Dice, latency).
    if predicted.empty:
        return []
    pool = predicted[
        (predicted["source"] != "compressed")
        & predicted["feasible"]
        & predicted["dice"].notna()
        & predicted["latency_ms"].notna()
    ]
    if pool.empty:
        return []
    keep = nondominated_mask(pool[["dice", "latency_ms"]].to_numpy(float), ("maximize", "minimize"))
    return [str(n) for n, k in zip(pool["name"], keep) if k]


def _key_of(table: str) -> dict[str, Any] | None:
    """The key of a table file, when it is still where the search read it (else None: the key is unknown)."""
    path = Path(table)
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except ConfigError:
        return None  # the report still shows the numbers; the key is then stated as unknown
    key = data.get("key") if isinstance(data, dict) else None
    return key if isinstance(key, dict) else None


def _command(root: Path, key: dict[str, Any] | None) -> str:
    target = key.get("target") if key else None
    cmd = f"python run.py latency-table remeasure --study {shlex.quote(str(root))}"
    if target and target != "local":
        cmd += f" --target {shlex.quote(str(target))}"  # where the table was built: the same device
    elif not key:
        cmd += " --target TARGET"  # the table is gone: the user knows where it was built
    if key and key.get("threads") is not None:
        cmd += f" --threads {int(key['threads'])}"
    return cmd


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
