"""A search with --target predict:TABLE, its front remeasured, and the report showing PREDICTED beside MEASURED.

Everything is real: a tiny kernel table timed with ONNX Runtime on this CPU, a two-trial search that
predicts from it, `latency-table remeasure` timing the front, and the HTML report and summary.json.
No assertion depends on how fast or quiet the machine is: the report's numbers are checked against
the files', whatever they are.
"""

from __future__ import annotations

import json
import re

import pytest

from rtseg_nas.cli import main

TINY_SPACE = {
    "conv_widths": [[8, 16], [16, 24], [24, 32]],
    "token_widths": [[32, 48], [48, 64]],
    "enc_depths": [0, 1],
    "dec_depths": [0, 1],
    "mlp_ratio": [1, 2],
    "shift_size": [3, 5],
}
TIMING = ["--rounds", "1", "--runs", "1"]


@pytest.fixture(scope="module")
def predicted_study(tmp_path_factory):
    """(study folder, table file) of a two-trial search whose latencies were PREDICTED."""
    root = tmp_path_factory.mktemp("predreport")
    space = root / "space.json"
    space.write_text(json.dumps(TINY_SPACE))
    table = root / "cpu.json"
    build = ["latency-table", "build", "--out", str(table), "--size", "32", "--models", "1", "--calibrate", "3"]
    assert main([*build, "--space", str(space), *TIMING]) == 0
    study = root / "s"
    argv = [
        "search", "--data", "synthetic:16", "--study", str(study), "--trials", "2", "--size", "32", "--epochs", "1",
        "--steps-per-epoch", "1", "--batch-size", "4", "--space", str(space), "--target", f"predict:{table}",
    "--latency-size", "32", ]  # fmt: skip
    assert main(argv) == 0
    return study, table


def _summary(study):
    return json.loads((study / "report" / "summary.json").read_text())


def _html(study):
    return (study / "report" / "report.html").read_text()


def test_predicted_study_then_remeasured_report(predicted_study):
    study, table = predicted_study
    kinds = {json.loads(p.read_text())["latency_kind"] for p in study.glob("trials/*/candidate.json")}
    assert kinds == {"predicted"}

    # Not remeasured yet: the report says the latencies are predictions and how to measure them.
    assert main(["report", "--study", str(study)]) == 0
    section = _summary(study)["remeasured"]
    assert section["state"] == "predicted, not remeasured" and section["rows"] == []
    assert section["remeasure_command"].startswith(f"python run.py latency-table remeasure --study {study}")
    assert any(str(table) in k and "threads 1" in k for k in section["table_keys"])
    html = _html(study)
    assert 'id="predicted-only"' in html and "not measured" in html and 'id="remeasured-table"' not in html
    assert "latency-table remeasure --study" in html
    assert not (study / "report" / "remeasured.png").exists()

    assert main(["latency-table", "remeasure", "--study", str(study), "--runs", "2", "--rounds", "1"]) == 0
    written = json.loads((study / "remeasured.json").read_text())["rows"]
    assert written, "the front has at least one feasible candidate"
    assert main(["report", "--study", str(study)]) == 0
    section = _summary(study)["remeasured"]
    assert section["state"] == "remeasured" and section["file"] == str(study / "remeasured.json")
    rows = section["rows"]
    searched = {c["name"]: c for c in (json.loads(p.read_text()) for p in study.glob("trials/*/candidate.json"))}
    assert [r["name"] for r in rows] == [w["name"] for w in written]
    for r, w in zip(rows, written):
        # the report's numbers are the file's, exactly; the file's predicted number is the search's
        for key in ("predicted_ms", "measured_ms", "error_percent", "dice", "table"):
            assert r[key] == w[key], key
        assert searched[w["name"]]["latency_ms"] == w["predicted_ms"]
        assert r["error_percent"] == pytest.approx(100 * (w["predicted_ms"] - w["measured_ms"]) / w["measured_ms"])
        assert "built on local" in r["table_key"] and "threads 1" in r["table_key"] and "opset 17" in r["table_key"]
        assert r["measured_on"].startswith("local: ") and "onnxruntime" in r["measured_on"]
        assert "input 1x1x32x32" in r["measured_on"] and r["conditions_differ"] == [] and not r["stale"]
    assert section["mape_percent"] == pytest.approx(sum(abs(w["error_percent"]) for w in written) / len(written))
    assert section["not_remeasured"] == []

    html = _html(study)
    assert 'id="predicted-only"' not in html
    table_html = re.search(r'<table id="remeasured-table">.*?</table>', html, re.S).group(0)
    body_rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table_html.split("<tbody>")[1], re.S)
    assert len(body_rows) == len(written)
    for row_html, w in zip(body_rows, written):
        cells = re.findall(r"<td>(.*?)</td>", row_html, re.S)
        assert cells[0] == w["name"]
        assert cells[2:4] == [f"{w['predicted_ms']:.3f}", f"{w['measured_ms']:.3f}"]
        assert cells[5] == f"{w['error_percent']:+.1f}"
        assert str(table) in cells[6] and "onnxruntime CPUExecutionProvider fp32" in cells[6]
    assert 'class="kind predicted">PREDICTED</span> ms' in html and 'class="kind measured">MEASURED</span> ms' in html
    assert (study / "report" / "remeasured.png").stat().st_size > 0 and 'id="fig-remeasured"' in html


def test_a_measured_study_has_no_predicted_section(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(TINY_SPACE))
    study = tmp_path / "m"
    argv = [
        "search", "--data", "synthetic:16", "--study", str(study), "--trials", "1", "--size", "32", "--epochs", "1",
        "--steps-per-epoch", "1", "--batch-size", "4", "--space", str(space), "--latency-runs", "2",
        "--latency-size", "32", "--latency-warmup", "1",
    ]  # fmt: skip
    assert main(argv) == 0
    assert main(["report", "--study", str(study)]) == 0
    assert _summary(study)["remeasured"] is None
    html = _html(study)
    assert 'id="remeasured"' not in html and "PREDICTED" not in html
    assert not (study / "report" / "remeasured.png").exists()
