"""Where a latency number comes from: one table of backends, chosen by ``--target``.

``profile_model`` asks :func:`resolve_backends` for the backends of a target, lets each refuse
what it cannot answer (:meth:`LatencyBackend.check`), exports the ONNX graph each one asks for
(:meth:`LatencyBackend.onnx_opset`), and calls :meth:`LatencyBackend.measure`. Validation,
pruning's latency target and every other comparison of several graphs call
:meth:`LatencyBackend.time_many`, which times them against each other with the one timer
(:mod:`profiling._timing`). A new way to obtain latency is one class and one line in
:data:`TARGETS`; its callers do not grow.

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from profiling._records import (
    ESTIMATE_TARGET,
    ESTIMATED,
    LOCAL_OPSET,
    MEASURED,
    PREDICT_PREFIX,
    PREDICTED,
    REMOTE_OPSET,
    LatencyRecord,
)
from profiling._timing import TimedResult, TimingOptions
from rtseg_core import ConfigError, ProfilingError

if TYPE_CHECKING:
    from profiling._predictor import LatencyPredictor
    from profiling._ssh import SSHOptions

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
    ssh_options: SSHOptions | None = None
    remote_backend: str = "auto"
    opset_given: int | None = None

    def with_onnx(self, path: Path) -> LatencyRequest:
        return replace(self, onnx_path=path)


class LatencyBackend(Protocol):
    """One source of latency records: a runtime here, a device, an estimate or a prediction.

    The contract every caller goes through (``profile_model``, validation, pruning's latency
    target, the predictor bench); nothing dispatches around it on the target's kind. For a
    request: :meth:`onnx_opset` says which graph the backend needs (the caller exports the model
    there, or brings its own graph, and fills ``request.onnx_path``), :meth:`check` refuses what
    the backend cannot answer, then :meth:`measure` times one model or :meth:`time_many` several
    that are compared with each other. ``profile_model`` checks before exporting, so a refusal
    costs nothing there.
    """

    name: str  # in messages and skipped reasons: "onnxruntime", "pytorch", "ssh", "roofline", "kernel-predictor"
    kind: str  # what its records are: MEASURED, ESTIMATED or PREDICTED (profiling._records)
    # Whether a graph already exported at another opset runs as is (ONNX Runtime reads every opset;
    # TensorRT 8.0/8.2 on a device and a kernel table need their own): callers may then reuse a file.
    runs_any_opset: bool

    def check(self, request: LatencyRequest) -> None:
        """Raise a :class:`~rtseg_core.SuiteError` naming the option when this backend cannot answer
        ``request`` (a precision, thread count, batch or opset it does not cover); return None
        otherwise. A request without ``onnx_path`` but with a model is one the caller will export
        from the model (in fp32)."""

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        """The opset to export the model at before :meth:`measure` / :meth:`time_many`, or None when
        the backend needs no ONNX graph (it works on ``request.model``)."""

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        """``(records, skipped reasons)`` for one request: its own warm-up and runs (``request.warmup``,
        ``request.runs``; None = the backend's defaults). A reason instead of a record where the
        request cannot be answered for a reason that is not an error (e.g. an ONNX file in PyTorch)."""

    def time_many(self, requests: Mapping[str, LatencyRequest], options: TimingOptions) -> dict[str, TimedResult]:
        """Every request, comparable with each other: ``{name: TimedResult}`` in the order given.

        Measuring backends time them in one alternating loop (:mod:`profiling._timing`, with
        ``options``' rounds, runs, warm-up, threads and seed; a device in ``options.device_rounds``
        rotated rounds); estimates and predictions answer each request alone (``samples`` None).
        Every request must have passed :meth:`check` and carry the graph :meth:`onnx_opset` asked for.
        """


def _one_at_a_time(backend: LatencyBackend, requests: Mapping[str, LatencyRequest]) -> dict[str, TimedResult]:
    # estimates and predictions time nothing: one answer per request, no samples
    out = {}
    for name, request in requests.items():
        records, skipped = backend.measure(request)
        if len(records) != 1:
            raise ProfilingError(f"{name}: {backend.name} gave no answer ({'; '.join(skipped)})")
        out[name] = TimedResult(records[0])
    return out


class OnnxRuntimeLocal:
    kind = MEASURED
    name = "onnxruntime"
    runs_any_opset = True

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        return request.opset_given or LOCAL_OPSET

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        from profiling._latency import measure_onnxruntime

        return [
            measure_onnxruntime(
                request.onnx_path, _local_config(request), model_name=request.name, precision=request.precision
            )
        ], []

    def check(self, request: LatencyRequest) -> None:
        # ONNX Runtime runs the graph as written: a model source is exported and timed in fp32 only.
        if request.model is not None and request.onnx_path is None and request.precision != "fp32":
            raise ProfilingError(
                f"{request.name}: ONNX Runtime runs the exported model in fp32; to time {request.precision} locally, "
                "quantize it first and pass the ONNX file (--onnx), or use --backend pytorch on a GPU for fp16"
            )

    def time_many(self, requests: Mapping[str, LatencyRequest], options: TimingOptions) -> dict[str, TimedResult]:
        from profiling._timing import time_graphs

        missing = [n for n, r in requests.items() if r.onnx_path is None]
        if missing:
            raise ProfilingError(f"onnxruntime: no ONNX graph to time for {', '.join(missing)} (export it first)")
        got = time_graphs(
            {n: r.onnx_path for n, r in requests.items()},  # type: ignore[misc]
            options,
            precisions={n: r.precision for n, r in requests.items()},
        )
        return {n: TimedResult(replace(t.record, target=requests[n].target), t.samples) for n, t in got.items()}


class PyTorchLocal:
    kind = MEASURED
    name = "pytorch"
    runs_any_opset = True  # it runs no graph at all

    def check(self, request: LatencyRequest) -> None:
        return None

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        return None

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        from profiling._latency import measure_pytorch

        if request.model is None:
            return [], ["pytorch: an ONNX file cannot run in PyTorch eager (give --arch or --checkpoint)"]
        return [
            measure_pytorch(request.model, _local_config(request), model_name=request.name, precision=request.precision)
        ], []

    def time_many(self, requests: Mapping[str, LatencyRequest], options: TimingOptions) -> dict[str, TimedResult]:
        from profiling._latency import eager_record, eager_runner
        from profiling._timing import time_alternating
        from rtseg_core import torch_threads

        no_model = [n for n, r in requests.items() if r.model is None]
        if no_model:
            raise ProfilingError(f"pytorch: {', '.join(no_model)} are ONNX files; PyTorch eager needs the module")
        configs = {n: replace(_local_config(r), threads=options.threads, warmup=options.warmup, seed=options.seed)
                   for n, r in requests.items()}  # fmt: skip
        runners = {
            n: eager_runner(r.model, configs[n], precision=r.precision, model_name=n) for n, r in requests.items()
        }
        with torch_threads(options.threads):
            samples = time_alternating({n: run for n, (run, _) in runners.items()}, options)
        return {
            n: TimedResult(
                eager_record(runners[n][1], configs[n], samples[n].times(), model_name=n, target=requests[n].target,
                             how=options.describe()),
                samples[n],
            )
            for n in requests
        }  # fmt: skip


class SSHDevice:
    kind = MEASURED
    name = "ssh"
    runs_any_opset = False  # TensorRT 8.0/8.2 parse opset 13

    def check(self, request: LatencyRequest) -> None:
        return None  # the device profiler checks backend and precision against what the device has

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

    def time_many(self, requests: Mapping[str, LatencyRequest], options: TimingOptions) -> dict[str, TimedResult]:
        from profiling._timing import time_on_device

        def call(request: LatencyRequest) -> Callable[[int, int], LatencyRecord]:
            def once(warmup: int, runs: int) -> LatencyRecord:
                (record,), _ = self.measure(replace(request, warmup=warmup, runs=runs))
                return record

            return once

        missing = [n for n, r in requests.items() if r.onnx_path is None]
        if missing:
            raise ProfilingError(f"ssh: no ONNX graph to time for {', '.join(missing)} (export it first)")
        return time_on_device({n: call(r) for n, r in requests.items()}, options)


class RooflineEstimate:
    kind = ESTIMATED
    name = "roofline"
    runs_any_opset = True  # it runs no graph at all

    def check(self, request: LatencyRequest) -> None:
        from profiling._estimate import JETSON_NANO

        if request.model is None:
            raise ProfilingError(
                f"{request.name}: the Jetson estimate needs a PyTorch model (preset, config or checkpoint), "
                "not an ONNX file"
            )
        JETSON_NANO.peak_gflops(request.precision)  # a precision the roofline does not cover is refused here

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        return None

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        from profiling._estimate import estimate_latency

        self.check(request)
        record = estimate_latency(
            request.model,
            height=request.height,
            width=request.width,
            batch=request.batch,
            precision=request.precision,
            model_name=request.name,
        )
        return [record], []

    def time_many(self, requests: Mapping[str, LatencyRequest], options: TimingOptions) -> dict[str, TimedResult]:
        return _one_at_a_time(self, requests)


@dataclass
class KernelPredictor:
    """``predict:TABLE``: the kernel-level predictor of :mod:`profiling._predictor` on a built table."""

    table_path: str
    name: str = "kernel-predictor"
    kind = PREDICTED
    runs_any_opset = False  # the table holds kernels of one opset

    def _predictor(self) -> LatencyPredictor:
        return load_predictor(self.table_path)

    def check(self, request: LatencyRequest) -> None:
        predictor = self._predictor()
        opset = predictor.table.key.opset
        if request.opset_given is not None and request.opset_given != opset:
            raise ConfigError(
                f"{self.table_path}: the table holds opset-{opset} kernels; --opset {request.opset_given} "
                f"would predict another graph (leave --opset out, or build a table at that opset)"
            )
        predictor.check_request(precision=request.precision, threads=request.threads, batch=request.batch)

    def onnx_opset(self, request: LatencyRequest) -> int | None:
        return self._predictor().table.key.opset

    def measure(self, request: LatencyRequest) -> tuple[list[LatencyRecord], list[str]]:
        self.check(request)
        return [self._predictor().predict_onnx(request.onnx_path, model_name=request.name)], []

    def time_many(self, requests: Mapping[str, LatencyRequest], options: TimingOptions) -> dict[str, TimedResult]:
        return _one_at_a_time(self, requests)


# (resolved path, mtime_ns, size) -> predictor: a search or a pruning run asks for the same table every
# trial or step; reading the JSON and refitting the regressor and the overhead each time cost seconds.
_PREDICTORS: dict[tuple[str, int, int], LatencyPredictor] = {}


def load_predictor(table_path: str | Path) -> LatencyPredictor:
    """The :class:`LatencyPredictor` of ``table_path``, loaded once per version of the file.

    The cache key is the resolved path, the modification time and the size: a table rebuilt or
    grown between two calls is read again, an unchanged one is the same object (its fitted
    regressor and overhead are kept). A missing file is a :class:`ConfigError` naming it.
    """
    from profiling._predictor import LatencyPredictor

    path = Path(table_path)
    try:
        st = path.stat()
    except OSError:
        raise ConfigError(f"{path}: latency table file not found") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    predictor = _PREDICTORS.get(key)
    if predictor is None:
        predictor = LatencyPredictor.load(path)
        stale = [k for k in _PREDICTORS if k[0] == key[0]]
        for k in stale:  # an older version of the same file
            del _PREDICTORS[k]
        _PREDICTORS[key] = predictor
    return predictor


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
        from profiling._table import LatencyTable

        LatencyTable.load(str(target)[len(PREDICT_PREFIX) :])
    return kind


def resolve_backends(target: str, runtimes: Sequence[str] = LOCAL_RUNTIMES) -> list[LatencyBackend]:
    """The backends that answer for ``target`` (``runtimes`` picks the local ones)."""
    return TARGETS[target_kind(target)](str(target), runtimes)
