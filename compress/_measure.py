"""The numbers pruning steers by and reports: MACs (fvcore), latency, and the speed-up of one graph over another."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from profiling import PREDICT_PREFIX, TimingOptions
from rtseg_core import CompressionError, Record, SuiteError, scratch_dir


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
    """Median latency (ms) of one batch-1 forward, from the profiling backend table: ONNX Runtime or
    PyTorch eager on this machine (``backend`` = the runtime), or ``predict:TABLE`` (the table's
    cached predictor, which must answer for ``threads``). One model at a time: pruning compares
    each step with a target in milliseconds, not with another model."""
    from profiling import ExportConfig, LatencyRequest, export_onnx, resolve_backends

    work = deployable_copy(model)
    predict = backend.startswith(PREDICT_PREFIX)
    target = backend if predict else "local"
    try:
        (chosen,) = resolve_backends(target, () if predict else (backend,))
        request = LatencyRequest(
            name="pruning step", target=target, model=work, channels=work.config.in_channels, height=size,
            width=size, threads=threads, warmup=max(3, runs // 5), runs=runs, device="cpu",
        )  # fmt: skip
        chosen.check(request)
        opset = chosen.onnx_opset(request)
        with scratch_dir("prune") as tmp:
            if opset is not None:
                path = Path(tmp) / "step.onnx"
                export_onnx(work, path, ExportConfig(opset=opset, height=size, width=size, atol=1e-3))
                request = request.with_onnx(path)
            records, skipped = chosen.measure(request)
    except SuiteError as exc:
        raise CompressionError(f"pruning: cannot measure latency with {backend} ({exc})") from None
    if not records:
        raise CompressionError(f"pruning: {backend} gave no latency ({'; '.join(skipped)})")
    return records[0].median_ms


@dataclass(frozen=True)
class LatencyComparison(Record):
    """Two graphs timed against each other (``profiling.time_graphs``): medians and the speed-up.

    ``speedup`` = reference median / variant median (> 1: the variant is faster), with its 95 %
    bootstrap interval over the paired alternating rounds; ``method`` says how they were timed.
    """

    reference_ms: float
    variant_ms: float
    speedup: float
    speedup_ci95_low: float
    speedup_ci95_high: float
    threads: int
    rounds: int
    method: str

    def describe(self, reference: str, variant: str) -> str:
        return (
            f"{reference} {self.reference_ms:.2f} ms, {variant} {self.variant_ms:.2f} ms: {self.speedup:.2f}x "
            f"(95 % CI {self.speedup_ci95_low:.2f}-{self.speedup_ci95_high:.2f}x over {self.rounds} paired "
            f"alternating rounds; ONNX Runtime CPU, batch 1, {self.threads} thread(s))"
        )


def compare_latency(
    reference: str | Path,
    variant: str | Path,
    timing: TimingOptions,
    *,
    shape: tuple[int, int, int, int] | None = None,
) -> LatencyComparison:
    """``reference`` vs ``variant`` (ONNX files) with ONNX Runtime here, in one alternating loop
    (``shape``: N, C, H, W for dimensions a graph leaves dynamic)."""
    from profiling import speedup, time_graphs
    from rtseg_core import ProfilingError

    try:
        got = time_graphs({"reference": reference, "variant": variant}, timing, shape=shape)
    except ProfilingError as exc:
        raise CompressionError(str(exc)) from None
    ref, var = got["reference"], got["variant"]
    sp = speedup(ref.samples, var.samples)
    return LatencyComparison(
        reference_ms=ref.record.median_ms,
        variant_ms=var.record.median_ms,
        speedup=sp.ratio,
        speedup_ci95_low=sp.low,
        speedup_ci95_high=sp.high,
        threads=timing.threads,
        rounds=timing.rounds,
        method=timing.describe(),
    )
