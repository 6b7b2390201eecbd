"""The predicted-vs-measured section on hand-written study files: flags, absence and bad files.

The end-to-end run (a real predict:TABLE search, remeasured) is tests/rtseg_nas/test_remeasured_report.py.
"""

from __future__ import annotations

import json

import pytest

from reports import build_report, compute_report
from rtseg_core import ConfigError, atomic_write_json

from .conftest import SETTINGS, cand, tiny_records, write_study

PREDICTED = dict(latency_kind="predicted", target="predict:/nowhere/table.json", backend="kernel-predictor")


def _predicted_study(tmp_path):
    records = [
        cand("paper", **PREDICTED, latency_ms=40.0),
        cand("trial-1", source="trial", trial=1, dice=0.88, latency_ms=25.0, **PREDICTED),
        cand("trial-2", source="trial", trial=2, dice=0.85, latency_ms=55.0, **PREDICTED),
    ]
    return write_study(tmp_path / "study", records, settings={**SETTINGS, "target": "predict:/nowhere/table.json"})


KEY = {"target": "local", "device": "cpu", "runtime": "onnxruntime", "precision": "fp32", "threads": 1, "opset": 17,
       "batch": 1, "libraries": {"onnxruntime": "1.32.0"}}  # fmt: skip


def _row(name, predicted, measured, **measured_conditions):
    conditions = {"target": "local", "device": "cpu", "backend": "onnxruntime", "precision": "fp32", "threads": 1}
    return {
        "name": name,
        "dice": 0.9,
        "predicted_ms": predicted,
        "measured_ms": measured,
        "error_percent": 100 * (predicted - measured) / measured,
        "table": "/nowhere/table.json",
        "table_key": KEY,
        "measured": {**conditions, **measured_conditions, "runs": 10, "height": 64, "width": 64},
    }


def test_no_section_without_predictions(tiny_study):
    assert compute_report(tiny_study).remeasured is None
    html = build_report(tiny_study).read_text()
    summary = json.loads((tiny_study / "report" / "summary.json").read_text())
    assert summary["remeasured"] is None and 'id="remeasured"' not in html and "PREDICTED" not in html


def test_predicted_only_says_so_and_how_to_remeasure(tmp_path):
    study = _predicted_study(tmp_path)
    info = compute_report(study).remeasured
    assert info is not None and not info.remeasured and info.predicted == ("paper", "trial-1", "trial-2")
    assert info.not_remeasured == ("paper", "trial-1")  # the (Dice, latency) front remeasure would time
    # the table is gone: its key is unknown and the command asks for the target it was built on
    assert info.command == f"python run.py latency-table remeasure --study {study} --target TARGET"
    html = build_report(study).read_text()
    assert 'id="predicted-only"' in html and "--target TARGET" in html and "unknown" in html
    assert 'class="kind predicted">PREDICTED' in html  # the candidate tables label the rows too


def test_flags_other_conditions_stale_and_missing_rows(tmp_path):
    study = _predicted_study(tmp_path)
    rows = [
        _row("trial-1", 25.0, 24.0),
        _row("paper", 41.0, 50.0, threads=2),  # the study now says 40 ms, and it was timed on 2 threads
        _row("trial-9", 10.0, 10.0),
    ]
    atomic_write_json(study / "remeasured.json", {"kind": "predicted vs measured, feasible front", "rows": rows})
    info = compute_report(study).remeasured
    by = {r.name: r for r in info.rows}
    assert by["trial-1"].conditions_differ == () and not by["trial-1"].stale
    assert by["paper"].conditions_differ == ("threads: table 1 vs measured 2",) and by["paper"].stale
    assert info.missing == ("trial-9",) and info.not_remeasured == ()
    assert info.within == pytest.approx(2 / 3) and info.mape == pytest.approx((100 / 24 + 18 + 0) / 3)
    assert info.spearman == pytest.approx(1.0)
    html = build_report(study).read_text()
    assert "conditions differ: threads: table 1 vs measured 2" in html and "No longer in the study: trial-9" in html
    assert "changed since" in html and (study / "report" / "remeasured.svg").is_file()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([], "expected a JSON object"),
        ({"rows": {}}, "'rows' must be a list"),
        ({"rows": [{"name": "paper", "predicted_ms": 1.0}]}, "rows[0] (paper): 'measured_ms' must be a positive"),
        ({"rows": [{"name": "paper", "predicted_ms": -1.0, "measured_ms": 1.0}]}, "'predicted_ms' must be a positive"),
        ({"rows": [{"predicted_ms": 1.0, "measured_ms": 1.0}]}, "rows[0]: 'name'"),
    ],
)
def test_a_bad_remeasured_json_names_the_file_and_row(tmp_path, content, message):
    study = _predicted_study(tmp_path)
    (study / "remeasured.json").write_text(json.dumps(content))
    with pytest.raises(ConfigError) as exc:
        compute_report(study)
    assert str(study / "remeasured.json") in str(exc.value) and message in str(exc.value)


def test_a_measured_study_with_a_stray_remeasured_file_still_shows_it(tmp_path):
    study = write_study(tmp_path / "study", tiny_records(), settings=SETTINGS)
    atomic_write_json(study / "remeasured.json", {"rows": [_row("trial-1", 25.0, 26.0)]})
    info = compute_report(study).remeasured
    assert info is not None and info.predicted == () and [r.name for r in info.rows] == ["trial-1"]
