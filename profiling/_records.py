"""The measurement records of the suite: flat, frozen, JSON round-trip, one pandas column per field."""

from __future__ import annotations

from dataclasses import dataclass, field

# What a latency number is (timed on the target, a roofline estimate, a kernel-table prediction) and the
# predictor's target prefix (predict:TABLE) live beside the candidate record in rtseg_core, which the
# reports read without profiling; profiling re-exports them.
from rtseg_core import ESTIMATED as ESTIMATED
from rtseg_core import KINDS as KINDS
from rtseg_core import MEASURED as MEASURED
from rtseg_core import PREDICT_PREFIX as PREDICT_PREFIX
from rtseg_core import PREDICTED as PREDICTED
from rtseg_core import ProfilingError, Record

# The target name of the roofline estimate: defined here once, every package imports it.
ESTIMATE_TARGET = "jetson-nano-estimate"
LOCAL_OPSET, REMOTE_OPSET = 17, 13  # ONNX opsets exported for: this machine; a device (TensorRT 8.0/8.2 parse 13)


@dataclass(frozen=True)
class LatencyRecord(Record):
    """One latency measurement (or estimate) of one model on one target.

    ``kind`` is :data:`MEASURED`, :data:`ESTIMATED` (roofline) or :data:`PREDICTED` (kernel table):
    an estimate or a prediction is never shown as a measurement. Estimates and predictions have no
    dispersion: their ``p90_ms`` and ``iqr_ms`` are None, and tables print "-".
    Times are milliseconds per forward pass of one batch; ``fps`` is ``batch * 1000 / median_ms``.
    The conditions (device, runtime, precision, threads, input size, warm-up, runs) travel with
    the numbers so that every figure built from the record can state them.
    """

    model: str  # preset name, config file, checkpoint or ONNX path
    target: str  # "local", "ssh://user@host:port", "jetson-nano-estimate", "predict:TABLE"
    kind: str  # "measured" | "estimated" | "predicted"
    backend: str  # "onnxruntime", "pytorch", "tensorrt", "roofline", "kernel-predictor"
    provider: str  # e.g. "CPUExecutionProvider", "CUDAExecutionProvider", "trtexec 8.0.1", "eager"
    precision: str  # "fp32" | "fp16" | "int8"
    device: str  # human description: CPU model and cores, GPU name, "Jetson Nano (L4T R32.6.1)"
    batch: int
    channels: int
    height: int
    width: int
    threads: int | None  # intra-op threads; None where the runtime chooses (TensorRT)
    warmup: int  # warm-up iterations (trtexec: milliseconds, see ``notes``)
    runs: int  # timed iterations
    median_ms: float
    p90_ms: float | None  # None for an estimate or a prediction: it has no dispersion
    iqr_ms: float | None
    mean_ms: float
    min_ms: float
    fps: float
    host: str = ""  # hostname the measurement ran on
    environment: dict = field(default_factory=dict)  # library versions, OS, python, CPU flags
    power_mode: str | None = None  # nvpmodel -q, where readable
    clocks_pinned: bool | None = None  # jetson_clocks state, where known
    power_mean_mw: float | None = None  # mean board input power during the timed loop
    energy_per_frame_mj: float | None = None  # power_mean_mw * median_ms / 1000 / batch
    power_rail: str | None = None  # which tegrastats rail gave the power, e.g. "POM_5V_IN"
    notes: str = ""
    timestamp: str = ""  # ISO 8601, UTC

    def __post_init__(self) -> None:
        if self.kind not in KINDS:  # the one label never made up: a record without a known kind is a bug
            raise ProfilingError(f"{self.model}: latency kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def has_dispersion(self) -> bool:
        """Only measurements have a spread; estimates and predictions are single numbers."""
        return self.kind == MEASURED
