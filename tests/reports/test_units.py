"""One unit per quantity on every report surface: Dice a fraction in [0, 1] (as in every CSV, the
study database and optuna-dashboard), units in column names, and no dispersion for an estimate."""

from __future__ import annotations

import csv
import json
import re

from reports import build_report, compute_report, report_summary
from rtseg_core import atomic_write_json


def _reference_json(study):
    common = {"backend": "onnxruntime", "provider": "CPUExecutionProvider", "precision": "fp32", "threads": 1,
              "device": "cpu", "batch": 1, "channels": 1, "height": 128, "width": 128}  # fmt: skip
    atomic_write_json(
        study / "reference.json",
        {
            "name": "paper",
            "evaluation": {
                "PS": {"dice": 0.8902, "jaccard": 0.81},
                "FH": {"dice": 0.9782, "jaccard": 0.95},
                "mean": {"dice": 0.9342, "jaccard": 0.8822},
                "split": "test",
            },  # fmt: skip
            "profiles": [
                {**common, "kind": "measured", "median_ms": 22.2, "p90_ms": 23.9, "iqr_ms": 0.8, "fps": 45.1},
                # As files written before estimates lost their spread: p90 = median, IQR 0.
                {
                    **common,
                    "backend": "roofline",
                    "kind": "estimated",
                    "median_ms": 25.0,
                    "p90_ms": 25.0,
                    "iqr_ms": 0.0,
                    "fps": 40.0,
                },  # fmt: skip
            ],
        },
    )


def test_dice_is_a_fraction_on_every_report_surface(tiny_study):
    _reference_json(tiny_study)
    path = build_report(tiny_study)
    out = tiny_study / "report"
    html = path.read_text(encoding="utf-8")
    ship = html[html.index("Which model to ship") :]
    assert re.search(r"Ship <b>paper.int8</b>: <b>28.00 ms</b> per frame \(35.7 FPS\), Dice 0\.\d{4} ", ship)
    assert "within 1 Dice point (0.01) of the highest Dice" in ship and " %" not in ship.split("</div>")[0]
    assert "-0.50 Dice points (-0.0050) vs paper (Dice 0.8950 vs 0.9000)" in ship
    assert "<td>0.9342</td>" in html and "93.42" not in html  # the reference's mean Dice, as in its JSON
    # CSV and Markdown: unit-bearing names, Dice as stored.
    with open(out / "front.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {"dice", "latency_ms", "params", "macs", "fps"} <= set(rows[0])
    assert all(0.0 <= float(r["dice"]) <= 1.0 for r in rows)
    header = next(line for line in (out / "front.md").read_text().splitlines() if line.startswith("| name"))
    assert header.split(" | ")[2:8] == ["dice", "fps", "latency_ms", "latency", "mparams", "gmacs"]
    summary = report_summary(compute_report(tiny_study))
    assert 0.0 <= summary["ship"]["best_dice"] <= 1.0 and summary["ship"]["tolerance_dice"] == 0.01
    json.dumps(summary)


def test_the_estimated_reference_row_shows_no_spread(tiny_study):
    _reference_json(tiny_study)
    html = build_report(tiny_study).read_text(encoding="utf-8")
    rows = re.findall(r"<tr><td>(onnxruntime|roofline)</td>(.*?)</tr>", html)
    cells = {backend: re.findall(r"<td>(.*?)</td>", rest) for backend, rest in rows}
    # columns after runtime: provider, precision, threads, device, input, latency, median, p90, IQR, FPS
    assert cells["onnxruntime"][-3:-1] == ["23.9", "0.8"]
    assert cells["roofline"][-4] == "25" and cells["roofline"][-3:-1] == ["-", "-"]
    # a third latency of paper (its own profile run): said to come from another run, not compared
    assert "this model&#x27;s own profile run, another run than the search&#x27;s and validate&#x27;s" in html
