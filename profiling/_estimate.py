"""A Jetson Nano latency *estimate* for when no device is reachable: a per-kernel roofline, and its calibration.

Every number this module produces is an estimate and says so: records have
``kind="estimated"``, ``backend="roofline"`` and notes listing the assumptions.

**Roofline.** The model is prepared as it would be deployed (eval, DSConv frozen, BN folded into
the convs, as TensorRT does) and traced op by op (:func:`profiling._trace.trace_forward`). Each
op that launches work is one kernel with

    time = max(FLOPs / (peak FLOP/s * compute_efficiency),
               bytes moved / (memory bandwidth * memory_efficiency)) + launch_overhead

where FLOPs = 2 * MACs for convolutions and matrix products and one per output element
otherwise, and bytes moved = inputs read + outputs written (weights included) at the
precision's element size. The device constants are published figures (:data:`JETSON_NANO`);
the efficiencies and the launch overhead are documented guesses, which is why the estimate is
only an estimate and why :class:`CalibratedEstimator` exists. No kernel fusion beyond BN folding
is modelled (TensorRT also fuses activations and elementwise ops, so the op count is high).

**Calibration.** Given measured latencies of some models, fit ``measured ~= a * estimate^b``
(least squares on the logs; ``method="power"``) or ``measured ~= c1 * compute + c2 * memory +
c3 * kernels`` over the per-kernel terms (non-negative least squares; ``method="terms"``) and
report the leave-one-out mean absolute percentage error on the models it was not fitted to.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch
from torch import nn

from profiling._records import ESTIMATE_TARGET, ESTIMATED, LatencyRecord
from rtseg_core import ProfilingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceSpec:
    """Published peak figures of a device and the assumed fractions of them real kernels reach."""

    name: str
    peak_gflops_fp32: float  # GFLOP/s (an FMA counts 2)
    peak_gflops_fp16: float
    memory_gbs: float  # GB/s (1e9 bytes)
    compute_efficiency: float  # share of peak FLOP/s a convolution kernel sustains
    memory_efficiency: float  # share of peak bandwidth a streaming kernel sustains
    launch_overhead_us: float  # per kernel: launch + scheduling gap
    source: str = ""

    def peak_gflops(self, precision: str) -> float:
        if precision == "fp32":
            return self.peak_gflops_fp32
        if precision == "fp16":
            return self.peak_gflops_fp16
        raise ProfilingError(
            f"roofline: precision {precision!r} is not estimated for {self.name} "
            "(fp32 or fp16; the Nano's Maxwell GPU has no fast INT8)"
        )


# Jetson Nano: Maxwell GPU with 128 CUDA cores at up to 921.6 MHz (MAXN, 10 W): 128 * 2 * 0.9216
# = 235.9 GFLOP/s FP32 and twice that in FP16 (paired half2 math); 4 GB LPDDR4, 64-bit at
# 1600 MHz = 25.6 GB/s, shared with the CPU. Efficiencies and overhead are assumptions.
JETSON_NANO = DeviceSpec(
    name="Jetson Nano (Maxwell GPU, 128 CUDA cores @ 921.6 MHz, LPDDR4 25.6 GB/s)",
    peak_gflops_fp32=235.9,
    peak_gflops_fp16=471.9,
    memory_gbs=25.6,
    compute_efficiency=0.5,
    memory_efficiency=0.6,
    launch_overhead_us=20.0,
    source="NVIDIA Jetson Nano published specifications (128-core Maxwell @ 921.6 MHz, 64-bit LPDDR4 25.6 GB/s), MAXN",
)

_BYTES = {"fp32": 4, "fp16": 2}


@dataclass(frozen=True)
class KernelEstimate:
    """One kernel of the roofline: its work, its bound and its estimated time (milliseconds)."""

    op: str
    module: str
    macs: int
    flops: int
    bytes: int
    compute_ms: float
    memory_ms: float
    overhead_ms: float
    time_ms: float
    bound: str  # "compute" | "memory"


@dataclass(frozen=True)
class RooflineEstimate:
    """The per-kernel roofline of one model at one input shape and precision (all times estimates)."""

    spec: DeviceSpec
    precision: str
    batch: int
    channels: int
    height: int
    width: int
    kernels: tuple[KernelEstimate, ...]

    @property
    def total_ms(self) -> float:
        return float(sum(k.time_ms for k in self.kernels))

    def terms(self) -> np.ndarray:
        """(compute-bound ms, memory-bound ms, kernel count): the features of the ``terms`` calibration."""
        compute = sum(k.time_ms - k.overhead_ms for k in self.kernels if k.bound == "compute")
        memory = sum(k.time_ms - k.overhead_ms for k in self.kernels if k.bound == "memory")
        return np.array([compute, memory, float(len(self.kernels))])

    def by_module(self, depth: int = 1) -> dict[str, float]:
        """Estimated ms summed per module path truncated to ``depth`` components (``""`` = top level)."""
        out: dict[str, float] = {}
        for k in self.kernels:
            key = ".".join(k.module.split(".")[:depth]) if k.module else ""
            out[key] = out.get(key, 0.0) + k.time_ms
        return out

    def assumptions(self) -> str:
        s = self.spec
        return (
            f"ESTIMATE, not a measurement: per-kernel roofline for {s.name}; peak {s.peak_gflops(self.precision):g} "
            f"GFLOP/s {self.precision} x compute efficiency {s.compute_efficiency:g}, {s.memory_gbs:g} GB/s x memory "
            f"efficiency {s.memory_efficiency:g}, {s.launch_overhead_us:g} us launch overhead per kernel "
            f"({len(self.kernels)} kernels); BN folded, no other fusion modelled; source: {s.source}"
        )

    def to_record(self, model_name: str) -> LatencyRecord:
        """A :class:`LatencyRecord` with ``kind="estimated"`` for this roofline."""
        return _estimate_record(
            self,
            model_name=model_name,
            total_ms=self.total_ms,
            backend="roofline",
            target=ESTIMATE_TARGET,
            device=f"{self.spec.name} (estimate)",
            notes=self.assumptions(),
        )


def _estimate_record(
    est: RooflineEstimate, *, model_name: str, total_ms: float, backend: str, target: str, device: str, notes: str
) -> LatencyRecord:
    return LatencyRecord(
        model=model_name,
        target=target,
        kind=ESTIMATED,
        backend=backend,
        provider="roofline model",
        precision=est.precision,
        device=device,
        batch=est.batch,
        channels=est.channels,
        height=est.height,
        width=est.width,
        threads=None,
        warmup=0,
        runs=0,
        median_ms=total_ms,
        p90_ms=None,  # one computed number, not a distribution of runs: no spread to report
        iqr_ms=None,
        mean_ms=total_ms,
        min_ms=total_ms,
        fps=est.batch * 1000.0 / total_ms,
        notes=notes,
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def estimate_roofline(
    model: nn.Module,
    *,
    height: int = 256,
    width: int | None = None,
    batch: int = 1,
    channels: int | None = None,
    precision: str = "fp32",
    spec: DeviceSpec = JETSON_NANO,
) -> RooflineEstimate:
    """Per-kernel roofline estimate of one forward pass of ``model`` (see the module docstring).

    The model is not modified: the deployable copy (DSConv frozen, BN folded) is traced on the CPU.
    """
    from profiling._export import prepare_for_export
    from profiling._trace import trace_forward

    width = height if width is None else width
    channels = channels or getattr(getattr(model, "config", None), "in_channels", None)
    if channels is None:
        raise ProfilingError("roofline: cannot tell the input channels; pass channels=")
    peak = spec.peak_gflops(precision) * 1e9 * spec.compute_efficiency  # FLOP/s
    bandwidth = spec.memory_gbs * 1e9 * spec.memory_efficiency  # bytes/s
    scale = _BYTES[precision] / 4  # the trace runs in fp32
    deployable, _ = prepare_for_export(model)
    x = torch.randn(batch, channels, height, width, generator=torch.Generator().manual_seed(0))
    trace = trace_forward(deployable, x)
    kernels = []
    overhead_ms = spec.launch_overhead_us / 1000.0
    for op in trace.kernels:
        moved = int((op.read_bytes + op.write_bytes) * scale)
        compute_ms = op.flops / peak * 1000.0
        memory_ms = moved / bandwidth * 1000.0
        kernels.append(
            KernelEstimate(
                op=op.op,
                module=op.module,
                macs=op.macs,
                flops=op.flops,
                bytes=moved,
                compute_ms=compute_ms,
                memory_ms=memory_ms,
                overhead_ms=overhead_ms,
                time_ms=max(compute_ms, memory_ms) + overhead_ms,
                bound="compute" if compute_ms >= memory_ms else "memory",
            )
        )
    return RooflineEstimate(
        spec=spec,
        precision=precision,
        batch=batch,
        channels=channels,
        height=height,
        width=width,
        kernels=tuple(kernels),
    )


def estimate_latency(
    model: nn.Module,
    *,
    height: int = 256,
    width: int | None = None,
    batch: int = 1,
    precision: str = "fp32",
    spec: DeviceSpec = JETSON_NANO,
    model_name: str = "model",
) -> LatencyRecord:
    """The roofline estimate as a :class:`LatencyRecord` (``kind="estimated"``, ``backend="roofline"``)."""
    est = estimate_roofline(model, height=height, width=width, batch=batch, precision=precision, spec=spec)
    return est.to_record(model_name)


# -- calibration -------------------------------------------------------------------------------

METHODS = ("power", "terms")


def _measured_ms(value: float | LatencyRecord) -> float:
    ms = value.median_ms if isinstance(value, LatencyRecord) else float(value)
    if not (math.isfinite(ms) and ms > 0):
        raise ProfilingError(f"calibration: a measured latency must be a positive number of ms, got {ms!r}")
    return ms


# Below this spread of log(raw estimate) (about 5 %), the exponent of the power law is not
# identifiable: two models the roofline rates 2.789 and 2.788 ms gave a slope of ~1e3 and an
# overflowing scale. The fit then keeps the exponent at 1 and fits the scale alone.
MIN_LOG_SPREAD = 0.05


def _fit(method: str, raw: np.ndarray, feats: np.ndarray, measured: np.ndarray) -> np.ndarray:
    if method == "power":
        log_raw, log_y = np.log(raw), np.log(measured)
        if np.ptp(log_raw) < MIN_LOG_SPREAD:
            return np.array([math.exp(float(np.mean(log_y - log_raw))), 1.0])
        b, log_a = np.polyfit(log_raw, log_y, 1)
        return np.array([math.exp(log_a), b])
    from scipy.optimize import nnls

    coef, _ = nnls(feats, measured)
    return coef


def _apply(method: str, coef: np.ndarray, raw: np.ndarray, feats: np.ndarray) -> np.ndarray:
    if method == "power":
        return coef[0] * raw ** coef[1]
    return feats @ coef


@dataclass
class CalibratedEstimator:
    """The roofline corrected by measurements: ``fit(pairs)`` then ``predict(model)``.

    ``pairs``: ``(model or RooflineEstimate, measured)`` where measured is a
    :class:`LatencyRecord` (its median, and its input shape for the roofline) or milliseconds
    (then the roofline uses ``height``/``width``/``batch`` given to :meth:`fit`).
    After fitting: ``coef`` (power: ``[a, b]``; terms: ``[c_compute, c_memory, c_kernel_ms]``),
    ``mape_fit`` (in-sample) and ``mape_holdout`` (leave-one-out, percent; ``None`` when there
    are too few pairs: power needs 3, terms 4).
    """

    spec: DeviceSpec = JETSON_NANO
    precision: str = "fp32"
    method: str = "power"
    coef: np.ndarray | None = None
    n_pairs: int = 0
    mape_fit: float | None = None
    mape_holdout: float | None = None
    holdout_errors: list[float] = field(default_factory=list)  # percent, one per left-out pair
    target: str = ""
    device: str = ""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ProfilingError(f"CalibratedEstimator.method: one of {', '.join(METHODS)}, got {self.method!r}")

    def _roofline(self, source: Any, *, height: int, width: int, batch: int) -> RooflineEstimate:
        if isinstance(source, RooflineEstimate):
            return source
        if not isinstance(source, nn.Module):
            from models import build_model, create_config

            source = build_model(create_config(source))
        return estimate_roofline(
            source, height=height, width=width, batch=batch, precision=self.precision, spec=self.spec
        )

    def fit(
        self,
        pairs: Sequence[tuple[Any, float | LatencyRecord]],
        *,
        height: int = 256,
        width: int | None = None,
        batch: int = 1,
    ) -> CalibratedEstimator:
        min_pairs = 2 if self.method == "power" else 3
        if len(pairs) < min_pairs:
            raise ProfilingError(
                f"calibration ({self.method}): needs at least {min_pairs} (model, measurement) pairs, got {len(pairs)}"
            )
        ests, measured = [], []
        for source, value in pairs:
            if isinstance(value, LatencyRecord):
                h, w, n = value.height, value.width, value.batch
            else:
                h, w, n = height, width or height, batch
            ests.append(self._roofline(source, height=h, width=w, batch=n))
            measured.append(_measured_ms(value))
        raw = np.array([e.total_ms for e in ests])
        feats = np.stack([e.terms() for e in ests])
        y = np.array(measured)
        self.coef = _fit(self.method, raw, feats, y)
        self.n_pairs = len(pairs)
        self.mape_fit = float(np.mean(np.abs(_apply(self.method, self.coef, raw, feats) - y) / y) * 100.0)
        self.holdout_errors = []
        if len(pairs) > min_pairs:
            for i in range(len(pairs)):
                keep = np.arange(len(pairs)) != i
                coef = _fit(self.method, raw[keep], feats[keep], y[keep])
                pred = _apply(self.method, coef, raw[i : i + 1], feats[i : i + 1])[0]
                self.holdout_errors.append(float(abs(pred - y[i]) / y[i] * 100.0))
            self.mape_holdout = float(np.mean(self.holdout_errors))
        else:
            self.mape_holdout = None
            log.warning("calibration: %d pairs leave none to hold out; mape_holdout is None", len(pairs))
        records = [v for _, v in pairs if isinstance(v, LatencyRecord)]
        self.target = records[0].target if records and len({r.target for r in records}) == 1 else ""
        self.device = records[0].device if records and len({r.device for r in records}) == 1 else ""
        return self

    def predict_ms(self, source: Any, *, height: int = 256, width: int | None = None, batch: int = 1) -> float:
        """Calibrated milliseconds for ``source`` (a model, config, preset name or RooflineEstimate)."""
        if self.coef is None:
            raise ProfilingError("CalibratedEstimator: call fit() before predict()")
        est = self._roofline(source, height=height, width=width or height, batch=batch)
        return float(_apply(self.method, self.coef, np.array([est.total_ms]), est.terms()[None, :])[0])

    def predict(
        self, source: Any, *, height: int = 256, width: int | None = None, batch: int = 1, model_name: str = "model"
    ) -> LatencyRecord:
        """A calibrated estimate as a :class:`LatencyRecord` (``kind="estimated"``)."""
        if self.coef is None:
            raise ProfilingError("CalibratedEstimator: call fit() before predict()")
        est = self._roofline(source, height=height, width=width or height, batch=batch)
        ms = float(_apply(self.method, self.coef, np.array([est.total_ms]), est.terms()[None, :])[0])
        holdout = f"{self.mape_holdout:.1f}%" if self.mape_holdout is not None else "n/a (too few pairs)"
        form = (
            f"measured ~= {self.coef[0]:.4g} * roofline^{self.coef[1]:.4g}"
            if self.method == "power"
            else "measured ~= {:.4g}*compute + {:.4g}*memory + {:.4g} ms/kernel".format(*self.coef)
        )
        notes = (
            f"CALIBRATED ESTIMATE, not a measurement: {form}, fitted on {self.n_pairs} measured models "
            f"(in-sample MAPE {self.mape_fit:.1f}%, leave-one-out MAPE {holdout}); base: {est.assumptions()}"
        )
        return _estimate_record(
            est,
            model_name=model_name,
            total_ms=ms,
            backend="roofline-calibrated",
            target=self.target or ESTIMATE_TARGET,
            device=f"{self.device or self.spec.name} (calibrated estimate)",
            notes=notes,
        )
