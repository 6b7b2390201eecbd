"""The two numbers pruning steers by: MACs (fvcore) and latency measured on this machine."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from profiling import PREDICT_PREFIX
from rtseg_core import CompressionError, ProfilingError, scratch_dir


def deployable_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy with DSConv2d restored (the pruning view swaps them for plain convs)."""
    from models import restore_dsconv

    work = copy.deepcopy(model).cpu().eval()
    restore_dsconv(work)
    return work


def count_macs(model: nn.Module, size: int) -> int:
    """fvcore multiply-accumulates of one eval forward pass at batch 1, ``size`` x ``size``.

    The same count as ``profiling``'s ``macs_fvcore`` (aux heads off).
    """
    from fvcore.nn import FlopCountAnalysis

    work = deployable_copy(model)
    x = torch.zeros(1, work.config.in_channels, size, size)
    analysis = FlopCountAnalysis(work, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fvcore's use of torch.jit
        return int(analysis.total())


def measure_latency_ms(model: nn.Module, *, size: int, backend: str, threads: int, runs: int) -> float:
    """Median latency (ms) of one batch-1 forward: ONNX Runtime on this machine, eager, or ``predict:TABLE``."""
    from profiling import ExportConfig, LatencyConfig, export_onnx, measure_onnxruntime, measure_pytorch

    work = deployable_copy(model)
    if backend.startswith(PREDICT_PREFIX):
        from profiling import LatencyPredictor

        predictor = LatencyPredictor.load(backend[len(PREDICT_PREFIX) :])
        predictor.check_request(precision="fp32", threads=None, batch=1)
        return predictor.predict_model(work, size=size, model_name="pruning step").median_ms
    config = LatencyConfig(height=size, width=size, threads=threads, runs=runs, warmup=max(3, runs // 5), device="cpu")
    try:
        if backend == "pytorch":
            return measure_pytorch(work, config).median_ms
        with scratch_dir("prune") as tmp:
            path = Path(tmp) / "step.onnx"
            export_onnx(work, path, ExportConfig(height=size, width=size, atol=1e-3))
            return measure_onnxruntime(path, config, precision="fp32").median_ms
    except ProfilingError as exc:
        raise CompressionError(f"pruning: cannot measure latency with {backend} ({exc})") from None
