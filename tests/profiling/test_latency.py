"""Local latency with real ONNX Runtime sessions and PyTorch eager on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch

from models import build_model, create_config
from profiling import ExportConfig, LatencyConfig, export_onnx, measure_onnxruntime, measure_pytorch
from rtseg_core import ProfilingError

TINY = {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (1, 0), "dec_depths": (0, 0)}


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(create_config("paper", **TINY)).eval()


@pytest.fixture(scope="module")
def small_onnx(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("latency") / "tiny.onnx"
    export_onnx(tiny_model, path, ExportConfig(height=64, width=64), model_name="tiny")
    return path


def _check_stats(rec, runs: int) -> None:
    assert rec.runs == runs
    assert 0 < rec.min_ms <= rec.median_ms <= rec.p90_ms
    assert rec.iqr_ms >= 0
    assert math.isclose(rec.fps, rec.batch * 1000.0 / rec.median_ms)


def test_onnxruntime_record_describes_the_measurement(small_onnx):
    rec = measure_onnxruntime(small_onnx, LatencyConfig(height=64, width=64, warmup=2, runs=7), model_name="tiny")
    assert (rec.kind, rec.target, rec.backend, rec.provider) == (
        "measured",
        "local",
        "onnxruntime",
        "CPUExecutionProvider",
    )
    assert (rec.batch, rec.channels, rec.height, rec.width) == (1, 1, 64, 64)
    assert rec.threads == 1 and rec.warmup == 2 and rec.precision == "fp32"
    _check_stats(rec, 7)
    env = rec.environment
    assert env["cores"] >= 1 and env["cpu"] and env["onnxruntime"] not in ("", "not installed")
    assert env["torch"] == torch.__version__ and env["threads"] == 1
    assert f"({env['cores']} cores)" in rec.device
    assert rec.timestamp.endswith("+00:00")


def test_onnxruntime_with_two_threads(small_onnx):
    rec = measure_onnxruntime(small_onnx, LatencyConfig(height=64, width=64, threads=2, warmup=1, runs=3))
    assert rec.threads == 2 and "intra-op 2" in rec.notes
    _check_stats(rec, 3)


def test_a_fixed_size_onnx_refuses_another_size(small_onnx):
    with pytest.raises(ProfilingError, match="fixed at 64.*--dynamic"):
        measure_onnxruntime(small_onnx, LatencyConfig(height=96, width=96, runs=1))


def test_pytorch_record_and_threads_are_restored(tiny_model):
    before = torch.get_num_threads()
    rec = measure_pytorch(
        tiny_model, LatencyConfig(height=64, width=64, threads=2, warmup=1, runs=3, device="cpu"), model_name="tiny"
    )
    assert torch.get_num_threads() == before
    assert (rec.kind, rec.backend, rec.provider, rec.threads) == ("measured", "pytorch", "eager (cpu)", 2)
    _check_stats(rec, 3)


def test_latency_config_rejects_nonsense():
    with pytest.raises(ProfilingError, match="LatencyConfig.runs"):
        LatencyConfig(runs=0)
    with pytest.raises(ProfilingError, match="fp16 eager inference needs a CUDA device"):
        measure_pytorch(torch.nn.Identity(), LatencyConfig(channels=1, device="cpu"), precision="fp16")
