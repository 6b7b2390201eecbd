"""latency-table, --target predict:TABLE on profile/search/prune, and bench --latency-predictor (tiny sizes)."""

from __future__ import annotations

import json

import pytest

from rtseg_nas.cli import main

COMMON = ["--size", "32", "--models", "2", "--calibrate", "3", "--rounds", "1", "--runs", "1"]


@pytest.fixture(scope="module")
def cpu_table(tmp_path_factory):
    table = tmp_path_factory.mktemp("lat") / "cpu.json"
    assert main(["latency-table", "build", "--out", str(table), *COMMON]) == 0
    return table


def test_latency_table_build_resume_show_and_refuse(cpu_table, capsys):
    data = json.loads(cpu_table.read_text())
    assert data["key"]["threads"] == 1 and len(data["calibration"]) == 3
    # running it again resumes: nothing left to time
    assert main(["latency-table", "build", "--out", str(cpu_table), *COMMON]) == 0
    assert f"{cpu_table}: 0 of " in capsys.readouterr().out
    assert main(["latency-table", "show", str(cpu_table)]) == 0
    shown = capsys.readouterr().out
    assert "built on local" in shown and "3 models timed whole" in shown
    rc = main(["latency-table", "build", "--out", str(cpu_table), "--threads", "2", *COMMON])
    err = capsys.readouterr().err
    assert rc != 0 and "threads: table 1 vs 2" in err


def test_a_table_that_predict_would_refuse_is_not_built(tmp_path, capsys):
    """--calibrate below the overhead fit's minimum (or too few models to time whole) is refused before
    any timing, in one error line naming the option and the minimum."""
    table = tmp_path / "t.json"
    for argv, message in (
        (["--calibrate", "1"], "--calibrate 1: a table needs at least 3 models timed whole"),
        (["--models", "0"], "--models 0: 1 model(s) in all"),
    ):
        assert main(["latency-table", "build", "--out", str(table), "--size", "32", *argv]) == 2
        errors = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
        assert len(errors) == 1 and errors[0].startswith(f"error: {message}"), errors
        assert not table.exists()


def test_profile_with_a_predict_target(cpu_table, tmp_path):
    out = tmp_path / "pred.json"
    argv = ["profile", "--arch", "paper", "--size", "32", "--no-count", "--target", f"predict:{cpu_table}"]
    assert main([*argv, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["kind"] for r in rows] == ["predicted"] and rows[0]["backend"] == "kernel-predictor"
    assert rows[0]["p90_ms"] is None and rows[0]["median_ms"] > 0


def test_search_checks_a_predict_table_before_any_trial(tmp_path, capsys):
    missing = tmp_path / "none.json"
    argv = ["search", "--study", str(tmp_path / "s"), "--trials", "1", "--target", f"predict:{missing}"]
    assert main(argv) == 1  # a missing input file: the run failed (2 is for a wrong option)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err and "not found" in err
    assert not (tmp_path / "s" / "trials").exists()


def test_prune_latency_probe_predicts_from_the_table(cpu_table):
    import torch

    from compress._measure import measure_latency_ms
    from models import build_model, create_config

    torch.manual_seed(0)
    model = build_model(create_config("paper")).eval()
    ms = measure_latency_ms(model, size=32, backend=f"predict:{cpu_table}", threads=1, runs=1)
    assert ms > 0
    with pytest.raises(Exception, match="another target|does not answer|file not found"):
        measure_latency_ms(model, size=32, backend=f"predict:{cpu_table}.missing", threads=1, runs=1)


def test_bench_latency_predictor_reports_three_methods(tmp_path, capsys):
    out = tmp_path / "pb.json"
    args = ["bench", "--latency-predictor", "--size", "32", "--models", "2", "--training-models", "3"]
    assert main([*args, "--rounds", "2", "--json", str(out)]) == 0
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


def test_bench_rounds_given_are_honoured_and_left_out_take_the_documented_default():
    from profiling import PREDICTOR_BENCH_ROUNDS, TimingOptions
    from rtseg_nas.cli._main import build_parser
    from rtseg_nas.cli.bench import _timing

    parser, _ = build_parser("bench")

    def parse(*argv):
        args = parser.parse_args(["bench", *argv])
        args.progress = False  # set by main() from --progress/--quiet and the terminal
        return args

    given = parse("--latency-predictor", "--rounds", "30")
    assert _timing(given, PREDICTOR_BENCH_ROUNDS).rounds == 30  # an explicit 30 is not the "unset" 30
    left_out = parse("--latency-predictor")
    assert left_out.rounds is None and _timing(left_out, PREDICTOR_BENCH_ROUNDS).rounds == PREDICTOR_BENCH_ROUNDS
    assert _timing(parse()) == TimingOptions()  # plain bench: the suite's defaults


def test_latency_table_refuses_an_explicit_backend_it_cannot_use_instead_of_replacing_it(tmp_path, capsys):
    out = tmp_path / "t.json"
    argv = ["latency-table", "build", "--out", str(out), "--target", "ssh://nobody@127.0.0.1:9", "--precision", "fp16"]
    assert main([*argv, "--remote-backend", "onnxruntime"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --remote-backend onnxruntime with --precision fp16") and not out.exists()
