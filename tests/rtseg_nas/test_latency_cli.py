"""The latency-table verb, --target predict:TABLE on profile, and bench --latency-predictor (tiny sizes)."""

from __future__ import annotations

import json

from rtseg_nas.cli import main


def test_latency_table_build_show_predict_and_refuse(tmp_path, capsys):
    table = tmp_path / "cpu.json"
    common = ["--size", "32", "--models", "2", "--calibrate", "3", "--rounds", "1", "--runs", "1"]
    assert main(["latency-table", "build", "--out", str(table), *common]) == 0
    printed = capsys.readouterr().out
    assert "built on local" in printed and "3 models timed whole" in printed
    data = json.loads(table.read_text())
    assert data["key"]["threads"] == 1 and len(data["calibration"]) == 3
    # running it again resumes: nothing left to time
    assert main(["latency-table", "build", "--out", str(table), *common]) == 0
    assert f"{table}: 0 of " in capsys.readouterr().out
    assert main(["latency-table", "show", str(table)]) == 0
    assert "kernels (" in capsys.readouterr().out
    out = tmp_path / "pred.json"
    rc = main(
        ["profile", "--arch", "paper", "--size", "32", "--no-count", "--target", f"predict:{table}", "--json", str(out)]
    )
    assert rc == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["kind"] for r in rows] == ["predicted"] and rows[0]["backend"] == "kernel-predictor"
    capsys.readouterr()
    rc = main(["latency-table", "build", "--out", str(table), "--threads", "2", *common])
    err = capsys.readouterr().err
    assert rc != 0 and "threads: table 1 vs 2" in err


def test_bench_latency_predictor_reports_three_methods(tmp_path, capsys):
    out = tmp_path / "pb.json"
    args = ["bench", "--latency-predictor", "--size", "32", "--models", "2", "--training-models", "3"]
    assert main([*args, "--rounds", "3", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    methods = {(s["method"], s["clock"]) for s in data["scores"]}
    for clock in ("wall", "cpu"):
        assert ("roofline + calibration", clock) in methods and ("FLOPs-only linear", clock) in methods
        assert ("kernel predictor (unseen: regressor)", clock) in methods
    held = set(data["measured_ms"])
    assert "paper" in held and sum(n.startswith("paper-pruned") for n in held) == 3 and len(held) == 6
    for s in data["scores"]:
        assert set(s["predicted_ms"]) == held and 0 <= s["within_10_percent"] <= 1
    assert data["conditions"]["threads"] == 1 and data["conditions"]["load_before"]
