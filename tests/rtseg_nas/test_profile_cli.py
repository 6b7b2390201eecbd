"""The profile, export and bench verbs, run in-process through rtseg_nas.cli.main."""

from __future__ import annotations

import json

import onnx
import pandas as pd

from rtseg_nas.cli import main


def test_profile_paper_writes_a_json_report_pandas_can_read(tmp_path, capsys):
    out = tmp_path / "report.json"
    rc = main(["profile", "--arch", "paper", "--size", "64", "--runs", "3", "--warmup", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "1,906,507 true" in printed and "1,864,867 by the paper's thop convention" in printed
    assert "MACs (multiply-accumulates, G)" in printed
    data = json.loads(out.read_text())
    frame = pd.DataFrame(data["rows"])
    assert sorted(frame["backend"]) == ["onnxruntime", "pytorch"]
    assert (frame["params"] == 1_906_507).all() and (frame["kind"] == "measured").all()
    assert (frame["runs"] == 3).all() and (frame["height"] == 64).all()
    assert data["cost"]["params_paper_convention"] == 1_864_867


def test_bench_prints_the_runtime_ratio(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--size", "64", "--rounds", "3", "--warmup", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "ORT FP32 is" in printed and "than PyTorch eager" in printed
    data = json.loads(out.read_text())
    assert data["baseline"] == "PyTorch eager"
    assert {v["name"] for v in data["variants"]} == {"PyTorch eager", "ORT FP32"}
    assert all(len(v["times_ms"]) == 3 for v in data["variants"])
    assert data["conditions"]["threads"] == 1 and data["conditions"]["input"] == "1x1x64x64"


def test_export_writes_a_checked_onnx_file(tmp_path, capsys):
    arch = tmp_path / "tiny.json"
    arch.write_text(
        json.dumps({"conv_widths": [8, 16, 32], "token_widths": [32, 48], "enc_depths": [0, 0], "dec_depths": [0, 0]})
    )
    out = tmp_path / "tiny.onnx"
    rc = main(["export", "--arch", str(arch), "--out", str(out), "--opset", "13", "--size", "32", "--dynamic"])
    assert rc == 0
    assert "max |diff|" in capsys.readouterr().out
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 13
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_unknown_arch_is_a_one_line_error(capsys):
    rc = main(["profile", "--arch", "papr", "--no-count"])
    err = capsys.readouterr().err
    assert rc == 2 and "Did you mean 'paper'" in err
