"""Checking a ``predict:TABLE`` search's front with real measurements (``latency-table remeasure``).

The latency half of checking a search's proxy numbers (the Dice half is the full-budget
retraining in :mod:`validate._queue`): the feasible (Dice, predicted latency) front is timed on a
real target and written to ``STUDY/remeasured.json``, predicted and measured side by side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from profiling import SSHOptions

# The conditions of a remeasurement that remeasured.json keeps beside each number (the report states them).
MEASURED_FIELDS = ("target", "device", "backend", "provider", "precision", "threads", "runs", "height", "width",
                   "timestamp")  # fmt: skip


def remeasure_front(
    study_dir: str,
    *,
    target: str = "local",
    threads: int | None = 1,
    runs: int = 30,
    ssh_options: SSHOptions | None = None,
    remote_backend: str = "auto",
) -> list[dict[str, Any]]:
    """Measure the feasible (Dice, latency) Pareto front of a search that ran on ``--target predict:TABLE``.

    Writes ``STUDY/remeasured.json`` (predicted and measured side by side, with the conditions of
    both) and returns its rows. Candidates whose latency was not predicted are left out.
    """
    import numpy as np

    from models import RTSegConfig
    from profiling import PREDICT_PREFIX, PREDICTED, profile_model
    from rtseg_core import MEASUREMENT_JSON, TRIALS, ConfigError, StudyDir, nondominated_mask, read_json

    study = StudyDir(study_dir)
    candidates = study.read_candidates((TRIALS,))
    folders = {r.name: folder for r, folder in candidates}
    records = [r for r, _ in candidates]
    records = [
        r
        for r in records
        if r.latency_kind == PREDICTED and r.feasible and r.dice is not None and r.latency_ms is not None
    ]
    if not records:
        raise ConfigError(
            f"{study.root}: no feasible candidates with a PREDICTED latency (search with --target predict:TABLE)"
        )
    values = np.array([[r.dice, r.latency_ms] for r in records])
    front = [r for r, keep in zip(records, nondominated_mask(values, ("maximize", "minimize"))) if keep]
    rows = []
    for r in sorted(front, key=lambda r: r.latency_ms):
        cfg = RTSegConfig.from_dict(r.config, source=f"{r.name} config")
        rep = profile_model(
            cfg,
            target=target,
            size=r.height,
            backends=("onnxruntime",),
            threads=threads,
            runs=runs,
            count=False,
            ssh_options=ssh_options,
            remote_backend=remote_backend,
            model_name=r.name,
        )
        m = rep.latency[0]
        # The table's key travels with the prediction (measurement.json); the report states it.
        measurement = folders[r.name] / MEASUREMENT_JSON
        predicted = (read_json(measurement).get("latency") or {}) if measurement.is_file() else {}
        predicted_env = predicted.get("environment") or {}
        rows.append(
            {
                "name": r.name,
                "dice": r.dice,
                "predicted_ms": r.latency_ms,
                "predicted_target": r.target,
                "table": predicted_env.get("table", r.target.removeprefix(PREDICT_PREFIX)),
                "table_key": predicted_env.get("table_key"),
                "measured_ms": m.median_ms,
                "measured_iqr_ms": m.iqr_ms,
                "error_percent": 100.0 * (r.latency_ms - m.median_ms) / m.median_ms,
                "measured": {k: getattr(m, k) for k in MEASURED_FIELDS},
                "load_average_1m": m.environment.get("load_average_1m"),
            }
        )
    study.write_remeasured({"kind": "predicted vs measured, feasible front", "rows": rows})
    return rows
