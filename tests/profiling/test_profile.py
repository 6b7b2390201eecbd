"""The one-call API: counts plus latency locally, from an ONNX file, by estimate, and over real SSH."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from models import create_config
from profiling import ExportConfig, ProfileReport, export_onnx, profile_model
from rtseg_core import ConfigError, ProfilingError

# No token blocks: quick to count and export (the token stages are covered by test_export/test_counts).
SMALL = create_config("paper", conv_widths=(8, 16, 32), token_widths=(32, 48), enc_depths=(0, 0), dec_depths=(0, 0))


@pytest.fixture(scope="module")
def local_report() -> ProfileReport:
    return profile_model(SMALL, size=64, warmup=1, runs=3, model_name="small")


def test_local_report_holds_costs_and_both_runtimes(local_report):
    rep = local_report
    assert rep.cost is not None and rep.cost.params > rep.cost.params_paper_convention
    assert [r.backend for r in rep.latency] == ["onnxruntime", "pytorch"]
    assert all(r.kind == "measured" and r.target == "local" and r.height == 64 for r in rep.latency)
    assert rep.export is not None and rep.export.max_abs_diff <= 1e-4 and rep.export.opset == 17
    table = rep.format_table()
    for text in ("1 x 1 x 64 x 64", "paper's thop convention", "multiply-accumulates", "onnxruntime", "pytorch"):
        assert text in table


def test_report_round_trips_through_json_and_pandas(local_report):
    data = json.loads(json.dumps(local_report.to_dict()))
    again = ProfileReport.from_dict(data)
    assert again.cost == local_report.cost and again.latency == local_report.latency
    frame = local_report.to_frame()
    assert len(frame) == 2
    assert {"median_ms", "p90_ms", "iqr_ms", "fps", "threads", "params", "macs_fvcore"} <= set(frame.columns)
    assert (frame["params"] == local_report.cost.params).all()
    assert pd.DataFrame(data["rows"]).shape == frame.shape


def test_onnx_source_takes_its_size_and_skips_pytorch(tmp_path):
    path = tmp_path / "small.onnx"
    export_onnx(__import__("models").build_model(SMALL), path, ExportConfig(height=48, width=48))
    rep = profile_model(str(path), warmup=1, runs=2)
    assert rep.cost is None and rep.source_kind == "onnx"
    assert [r.backend for r in rep.latency] == ["onnxruntime"]
    assert rep.latency[0].height == 48
    assert any("pytorch" in s for s in rep.skipped)
    with pytest.raises(ProfilingError, match="fixed at 48x48"):
        profile_model(str(path), size=64, runs=1)
    with pytest.raises(ProfilingError, match="needs a PyTorch model"):
        profile_model(str(path), target="jetson-nano-estimate")


def test_estimate_target_gives_an_estimated_record():
    rep = profile_model(SMALL, size=64, target="jetson-nano-estimate", count=False)
    assert rep.cost is None
    (rec,) = rep.latency
    assert (rec.kind, rec.backend, rec.target) == ("estimated", "roofline", "jetson-nano-estimate")
    assert "ESTIMATE" in rep.format_table()
    row = next(line for line in rep.format_table().splitlines() if "roofline" in line and "estimated" in line)
    median, p90, iqr = row.split()[-4:-1]  # ... median ms, p90 ms, IQR ms, FPS
    assert float(median) > 0 and (p90, iqr) == ("-", "-")  # an estimate has no spread to show
    assert rep.to_dict()["latency"][0]["p90_ms"] is None


def test_bad_target_and_backend_are_config_errors():
    with pytest.raises(ConfigError, match="--target"):
        profile_model(SMALL, target="jetson", count=False)
    with pytest.raises(ConfigError, match="--backend"):
        profile_model(SMALL, backends=("tensorrt",), count=False)


def test_ssh_target_exports_at_opset_13_and_times_on_the_device(sshd, tmp_path):
    """A real OpenSSH server on loopback plays the device (tests/profiling/conftest.py)."""
    opts = sshd.options(tmp_path)
    rep = profile_model(
        SMALL,
        target=sshd.url,
        ssh_options=opts,
        remote_backend="onnxruntime",
        size=32,
        warmup=1,
        runs=3,
        threads=1,
        count=False,
        model_name="small",
    )
    assert rep.export is not None and rep.export.opset == 13
    (rec,) = rep.latency
    assert rec.kind == "measured" and rec.backend == "onnxruntime" and rec.target.startswith("ssh://")
    assert (rec.height, rec.width, rec.runs) == (32, 32, 3)


def test_sources_resolve_to_models(tmp_path):
    import torch

    from models import Checkpoint, build_model, save_checkpoint
    from profiling import load_source

    model = build_model(SMALL)
    ckpt = tmp_path / "small.pt"
    save_checkpoint(Checkpoint(config=SMALL, state_dict=model.state_dict()), ckpt)
    src = load_source(str(ckpt))
    assert src.kind == "checkpoint" and src.name == "small.pt" and src.channels == 1
    assert torch.equal(src.model.head.weight, model.head.weight)  # the checkpoint's weights, not a fresh init
    assert load_source("paper").kind == "preset"
    # presets are built with seeded weights, and the global RNG is left alone
    state = torch.random.get_rng_state()
    a, b = load_source("paper", seed=3).model, load_source("paper", seed=3).model
    assert torch.equal(a.head.weight, b.head.weight)
    assert torch.equal(torch.random.get_rng_state(), state)
    with pytest.raises(ConfigError, match="not found"):
        load_source(str(tmp_path / "missing.onnx"))
