"""Where a latency number comes from: one table of backends, chosen by ``--target``.

``profile_model`` asks :func:`resolve_backends` for the backends of a target, exports the ONNX
graph each one asks for (:meth:`LatencyBackend.onnx_opset`), and calls
:meth:`LatencyBackend.measure`. A new way to obtain latency is one class and one line in
:data:`TARGETS`; ``profile_model`` does not grow.

=====================  =========================================  =========
target                 backends                                   kind
=====================  =========================================  =========
``local``              ONNX Runtime and/or PyTorch eager here     measured
``ssh://user@host``    the device profiler over SSH (ORT/trtexec) measured
``jetson-nano-estimate``  the roofline                            estimated
``predict:TABLE``      the kernel-level predictor built on TABLE  predicted
=====================  =========================================  =========
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from profiling._records import ESTIMATE_TARGET, LOCAL_OPSET, PREDICT_PREFIX, REMOTE_OPSET, LatencyRecord
from rtseg_core import ConfigError, ProfilingError

LOCAL_RUNTIMES = ("onnxruntime", "pytorch")
# Defaults where the caller leaves them open: local timing, then the remote side's own defaults.
LOCAL_WARMUP, LOCAL_RUNS, REMOTE_RUNS = 10, 50, 100
TARGET_FORMS = f"'local', 'ssh://user@host[:port]', '{ESTIMATE_TARGET}' or '{PREDICT_PREFIX}TABLE'"


@dataclass(frozen=True)
class LatencyRequest:
    """One model to time (or estimate) and how: what every backend receives.

    ``model`` is the PyTorch module (None for an ONNX file source); ``onnx_path`` the graph to
    time, filled in by ``profile_model`` when the backend asked for an export; ``opset_given``
    the user's ``--opset`` (None: the backend's default).
    """

    name: str
    target: str
    model: Any = None
    onnx_path: Path | None = None
    batch: int = 1
    channels: int = 1
    height: int = 256
    width: int = 256
    precision: str = "fp32"
    threads: int | None = None
    warmup: int | None = None
    runs: int | None = None
    seed: int = 0
    device: str = "auto"
    progress: bool = False
    ssh_options: Any = None
    remote_backend: str = "auto"
    opset_given: int | None = None

    def with_onnx(self, path: Path) -> LatencyRequest:
        return replace(self, onnx_path=path)


class LatencyBackend(Protocol):
    """One source of latency records."""

    name: str

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        """The opset to export the model at before :meth:`measure`, or None when no ONNX is needed."""

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        """(records, skipped reasons) for the request."""


class OnnxRuntimeLocal:
    name = "onnxruntime"

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        return request.opset_given or LOCAL_OPSET

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        from profiling._latency import measure_onnxruntime

        return [
            measure_onnxruntime(
                request.onnx_path, _local_config(request), model_name=request.name, precision=request.precision
            )
        ], []

    @staticmethod
    def check(request: LatencyRequest) -> None:
        # ONNX Runtime runs the graph as written: a model source is exported and timed in fp32 only.
        if request.model is not None and request.onnx_path is None and request.precision != "fp32":
            raise ProfilingError(
                f"{request.name}: ONNX Runtime runs the exported model in fp32; to time {request.precision} locally, "
                "quantize it first and pass the ONNX file (--onnx), or use --backend pytorch on a GPU for fp16"
            )


class PyTorchLocal:
    name = "pytorch"

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        return None

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        from profiling._latency import measure_pytorch

        if request.model is None:
            return [], ["pytorch: an ONNX file cannot run in PyTorch eager (give --arch or --checkpoint)"]
        return [
            measure_pytorch(request.model, _local_config(request), model_name=request.name, precision=request.precision)
        ], []


class SSHDevice:
    name = "ssh"

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        return request.opset_given or REMOTE_OPSET

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        from profiling._remote import profile_remote

        record = profile_remote(
            request.onnx_path,
            request.target,
            request.ssh_options,
            backend=request.remote_backend,
            precision=request.precision,
            input_shape=(request.batch, request.channels, request.height, request.width),
            warmup=request.warmup,
            runs=request.runs or REMOTE_RUNS,
            threads=request.threads,
            model_name=request.name,
        )
        return [record], []


class RooflineEstimate:
    name = "roofline"

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        return None

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        from profiling._estimate import estimate_latency

        if request.model is None:
            raise ProfilingError(
                f"{request.name}: the Jetson estimate needs a PyTorch model (preset, config or checkpoint), "
                "not an ONNX file"
            )
        record = estimate_latency(
            request.model,
            height=request.height,
            width=request.width,
            batch=request.batch,
            precision=request.precision,
            model_name=request.name,
        )
        return [record], []


@dataclass
class KernelPredictor:
    """``predict:TABLE``: the kernel-level predictor of :mod:`profiling._predictor` on a built table."""

    table_path: str
    name: str = "kernel-predictor"

    def _predictor(self):
        from profiling._predictor import LatencyPredictor

        return LatencyPredictor.load(self.table_path)

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        opset = self._predictor().table.key.opset
        if request.opset_given is not None and request.opset_given != opset:
            raise ConfigError(
                f"{self.table_path}: the table holds opset-{opset} kernels; --opset {request.opset_given} "
                f"would predict another graph (leave --opset out, or build a table at that opset)"
            )
        return opset

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        predictor = self._predictor()
        predictor.check_request(precision=request.precision, threads=request.threads, batch=request.batch)
        return [predictor.predict_onnx(request.onnx_path, model_name=request.name)], []


def _local_config(request: LatencyRequest):
    from profiling._latency import LatencyConfig

    return LatencyConfig(
        batch=request.batch,
        height=request.height,
        width=request.width,
        channels=request.channels,
        threads=request.threads or 1,
        warmup=LOCAL_WARMUP if request.warmup is None else request.warmup,
        runs=request.runs or LOCAL_RUNS,
        seed=request.seed,
        device=request.device,
        progress=request.progress,
    )


def _local(target: str, runtimes: Sequence[str]) -> list[LatencyBackend]:
    unknown = [b for b in runtimes if b not in _LOCAL]
    if unknown:
        raise ConfigError(f"--backend: {unknown[0]!r} is not one of {', '.join(LOCAL_RUNTIMES)}")
    return [_LOCAL[b]() for b in runtimes]


_LOCAL: dict[str, Callable[[], LatencyBackend]] = {"onnxruntime": OnnxRuntimeLocal, "pytorch": PyTorchLocal}

# target kind -> backends for (target, local runtimes asked for). The one place targets are known.
TARGETS: dict[str, Callable[[str, Sequence[str]], list[LatencyBackend]]] = {
    "local": _local,
    "ssh": lambda target, _: [SSHDevice()],
    ESTIMATE_TARGET: lambda target, _: [RooflineEstimate()],
    "predict": lambda target, _: [KernelPredictor(target[len(PREDICT_PREFIX) :])],
}


def target_kind(target: str) -> str:
    """The :data:`TARGETS` key of ``target``; :class:`ConfigError` listing the forms otherwise."""
    target = str(target)
    if target.startswith("ssh://"):
        return "ssh"
    if target.startswith(PREDICT_PREFIX):
        if not target[len(PREDICT_PREFIX) :]:
            raise ConfigError(f"--target {target!r}: give the table file, {PREDICT_PREFIX}TABLE")
        return "predict"
    if target in TARGETS:
        return target
    raise ConfigError(f"--target: {target!r} is not {TARGET_FORMS}")


def check_target(target: str) -> str:
    """Validate ``target`` before any work (a search checks it up front); returns its kind.

    For ``predict:TABLE`` the table must exist and be readable now, not after the first trial.
    """
    kind = target_kind(target)
    if kind == "predict":
        from profiling._predictor import LatencyTable

        LatencyTable.load(str(target)[len(PREDICT_PREFIX) :])
    return kind


def resolve_backends(target: str, runtimes: Sequence[str] = LOCAL_RUNTIMES) -> list[LatencyBackend]:
    """The backends that answer for ``target`` (``runtimes`` picks the local ones)."""
    return TARGETS[target_kind(target)](str(target), runtimes)
