"""Building a kernel latency table: the timers of a target and the resumable build.

:func:`build_table` decomposes the given models (:mod:`profiling._kernels`), times every distinct
kernel on the target in batches (:class:`LocalTimer`: ONNX Runtime here; :class:`SSHTimer`: the
device profiler over SSH), saves the table after every batch (an interrupted build resumes) and
times the first ``calibrate`` models whole for the predictor's overhead fit. Whole models are
compared with the suite's one timer (:mod:`profiling._timing`): locally in one alternating loop
(:func:`~profiling._timing.time_graphs`), on a device in rotated rounds
(:func:`~profiling._timing.time_on_device`), with :class:`~profiling._timing.TimingOptions`'
defaults unless a ``timing`` is given. The kernels of a batch go through the same alternating
loop locally, with the build's own ``rounds``/``runs``/``warmup`` (many small graphs: fewer runs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from profiling._kernels import Decomposition, KernelGraph, baseline_graph, decompose_onnx
from profiling._predictor import DEFAULT_CALIBRATION, export_for_table
from profiling._records import LOCAL_OPSET, REMOTE_OPSET
from profiling._table import CalibrationRow, KernelEntry, LatencyTable, TableKey, now_iso
from profiling._timing import TimingOptions
from rtseg_core import ConfigError, ProfilingError, check_threads, scratch_dir

if TYPE_CHECKING:
    from profiling._ssh import SSHOptions

log = logging.getLogger(__name__)


class LocalTimer:
    """ONNX Runtime on this machine: the kernels of a batch, then whole models, each set in one alternating loop.

    ``rounds``/``runs``/``warmup``: the kernels' loop (one untimed run, then ``runs`` timed runs per
    kernel and round). ``timing``: the whole models' (default: :class:`TimingOptions` at ``threads``).
    """

    def __init__(
        self, *, threads: int = 1, rounds: int = 5, runs: int = 5, warmup: int = 2, timing: TimingOptions | None = None
    ) -> None:
        if threads < 1 or rounds < 1 or runs < 1 or warmup < 0:
            raise ConfigError("latency table: threads, rounds and runs must be >= 1 and warm-up >= 0")
        self.threads, self.rounds, self.runs, self.warmup = threads, rounds, runs, warmup
        self.timing = TimingOptions(threads=threads) if timing is None else timing
        if self.timing.threads != threads:
            raise ConfigError(
                f"latency table: whole models timed at {self.timing.threads} threads, kernels at {threads}"
            )
        self.target = "local"

    def key(self, *, precision: str, opset: int, batch: int) -> TableKey:
        import onnx
        import onnxruntime as ort

        from profiling._env import describe_device

        if precision != "fp32":
            raise ConfigError(
                f"--precision {precision}: ONNX Runtime on this CPU runs the kernels in fp32; "
                "fp16 tables need a TensorRT device (--target ssh://... --remote-backend trtexec)"
            )
        return TableKey(
            target="local",
            device=describe_device(),
            runtime="onnxruntime CPUExecutionProvider",
            precision=precision,
            threads=self.threads,
            opset=opset,
            batch=batch,
            libraries={"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__},
        )

    def time_graphs(self, graphs: Sequence[KernelGraph]) -> dict[str, dict[str, list[float]]]:
        """{key: {"wall": ms per run, "cpu": thread CPU ms per run}}.

        With one intra-op thread ONNX Runtime computes in the calling thread, so the thread's
        CPU time is the kernel's compute without the time other processes held the core.
        """
        from profiling._ort import make_session
        from profiling._timing import session_runner, time_alternating

        rng = np.random.default_rng(0)
        runners: dict[str, Callable[[], Any]] = {}
        for g in graphs:
            sess = make_session(g.model, threads=self.threads, providers=["CPUExecutionProvider"])
            feed = {name: rng.standard_normal(shape).astype(dtype) for name, shape, dtype in g.inputs}
            runners[g.key] = session_runner(sess, feed)
        # one alternating loop over the whole batch: a load change on the shared machine hits every kernel alike
        options = TimingOptions(rounds=self.rounds, runs=self.runs, warmup=self.warmup, threads=self.threads)
        samples = time_alternating(runners, options)
        return {
            key: {"wall": s.times(), "cpu": s.times("cpu") if s.cpu_ms is not None else []}
            for key, s in samples.items()
        }

    def time_models(self, paths: dict[str, Path]) -> dict[str, dict[str, float | None]]:
        """Whole models in one alternating loop: {name: {"wall": median ms, "cpu": median thread CPU ms}}."""
        from profiling._timing import time_graphs

        shapes = {_input_shape(p) for p in paths.values()}
        if len(shapes) != 1:
            raise ProfilingError(f"latency table: the models to time whole have different input shapes {shapes}")
        got = time_graphs(paths, self.timing)
        return {name: {"wall": t.record.median_ms, "cpu": t.samples.cpu_median_ms} for name, t in got.items()}


class SSHTimer:
    """The device profiler over SSH: kernels uploaded and timed in batches, one connection per batch."""

    def __init__(
        self,
        target: str,
        options: SSHOptions | None = None,
        *,
        backend: str = "onnxruntime",
        threads: int | None = None,
        rounds: int = 5,
        runs: int = 5,
        warmup: int = 2,
        timing: TimingOptions | None = None,
    ) -> None:
        from profiling._ssh import SSHOptions, SSHTarget

        if backend not in ("onnxruntime", "trtexec"):
            raise ConfigError(f"--remote-backend {backend!r}: a latency table needs onnxruntime or trtexec")
        self.target = SSHTarget.parse(target).url
        self.options = options or SSHOptions()
        self.backend, self.threads = backend, threads
        self.rounds, self.runs, self.warmup = rounds, runs, warmup
        self.timing = timing or TimingOptions()  # whole models: device_rounds x device_runs
        self._facts: dict[str, Any] | None = None

    def key(self, *, precision: str, opset: int, batch: int) -> TableKey:
        from profiling._remote import describe_remote_device, probe_remote

        if self.backend == "onnxruntime" and precision != "fp32":  # before connecting: a refusal costs nothing
            raise ConfigError(
                f"--precision {precision} with --remote-backend onnxruntime: ONNX Runtime kernel tables are fp32; "
                "fp16 needs --remote-backend trtexec"
            )
        if self._facts is None:
            self._facts = probe_remote(self.target, self.options)
        f = self._facts
        runtime = "onnxruntime CPUExecutionProvider" if self.backend == "onnxruntime" else "tensorrt (trtexec)"
        libs = {"python": f.get("python"), "onnxruntime": f.get("onnxruntime"), "numpy": f.get("numpy")}
        if self.backend == "trtexec":
            libs = {"tensorrt": f.get("tensorrt_header"), "trtexec": f.get("trtexec"), "python": f.get("python")}
        return TableKey(
            target=self.target,
            device=describe_remote_device(f),
            runtime=runtime,
            precision=precision,
            threads=self.threads if self.backend == "onnxruntime" else None,
            opset=opset,
            batch=batch,
            libraries=libs,
        )

    def time_graphs(self, graphs: Sequence[KernelGraph], *, precision: str = "fp32") -> dict[str, list[float]]:
        from profiling._remote import time_kernels_remote

        return time_kernels_remote(
            graphs,
            self.target,
            self.options,
            backend=self.backend,
            precision=precision,
            threads=self.threads,
            rounds=self.rounds,
            runs=self.runs,
            warmup=self.warmup,
        )

    def time_models(self, paths: dict[str, Path], *, precision: str = "fp32") -> dict[str, dict[str, float | None]]:
        """Whole models on the device in rotated rounds (:func:`~profiling._timing.time_on_device`)."""
        from profiling._backends import LatencyRequest, SSHDevice

        requests = {}
        for name, path in paths.items():
            n, c, h, w = _input_shape(path)
            requests[name] = LatencyRequest(
                name=name, target=self.target, onnx_path=path, batch=n, channels=c, height=h, width=w,
                precision=precision, threads=self.threads, ssh_options=self.options, remote_backend=self.backend,
            )  # fmt: skip
        got = SSHDevice().time_many(requests, self.timing)
        return {name: {"wall": t.record.median_ms, "cpu": None} for name, t in got.items()}


def _input_shape(onnx_path: Path) -> tuple[int, int, int, int]:
    from profiling._onnx_input import read_onnx_input

    shape = read_onnx_input(onnx_path).shape
    if len(shape) != 4 or any(d is None for d in shape):
        raise ProfilingError(f"{onnx_path}: the predictor needs a static N, C, H, W input, got {shape}")
    return tuple(int(d) for d in shape)  # type: ignore[return-value]


def make_timer(
    target: str,
    *,
    threads: int | None,
    ssh_options: SSHOptions | None = None,
    remote_backend: str = "onnxruntime",
    rounds: int = 5,
    runs: int = 5,
    timing: TimingOptions | None = None,
) -> LocalTimer | SSHTimer:
    """The timer for ``target``: ``local`` or ``ssh://user@host[:port]`` (``timing``: whole models)."""
    if target == "local":
        return LocalTimer(
            threads=check_threads(threads or 1, source="--threads"), rounds=rounds, runs=runs, timing=timing
        )
    if str(target).startswith("ssh://"):
        return SSHTimer(
            target, ssh_options, backend=remote_backend, threads=threads, rounds=rounds, runs=runs, timing=timing
        )
    raise ConfigError(f"--target {target!r}: a latency table is built on 'local' or 'ssh://user@host[:port]'")


# -- building ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult:
    table: LatencyTable
    models: int
    kernels_total: int  # distinct kernels of the given models
    kernels_measured: int  # timed in this run (the rest were in the table already)
    calibrated: int  # whole models measured in this run
    seconds: float


def build_table(
    out: str | Path,
    models: Sequence[tuple[str, Any]],
    *,
    target: str = "local",
    size: int = 256,
    precision: str = "fp32",
    threads: int | None = 1,
    opset: int | None = None,
    batch_size: int = 64,
    calibrate: int = DEFAULT_CALIBRATION,
    rounds: int = 5,
    runs: int = 5,
    ssh_options: SSHOptions | None = None,
    remote_backend: str = "onnxruntime",
    timer: LocalTimer | SSHTimer | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    timing: TimingOptions | None = None,
) -> BuildResult:
    """Time the kernels of ``models`` (name, nn.Module or ONNX path) on ``target`` into the table ``out``.

    Resumes an existing table of the same key (kernels already timed are skipped, whole models
    already calibrated are not measured again) and refuses one of another key. ``calibrate``: how
    many of the models (the first ones) are also measured whole for the overhead fit, in one
    comparable run (``timing``: default :class:`TimingOptions`). ``rounds``/``runs``: the kernels'
    alternating rounds and timed runs per round. ``batch_size``: kernels per batch (per SSH
    connection); the table is saved after each. ``on_batch(done, total)`` reports progress.
    """
    started = time.monotonic()
    out = Path(out)
    if not models:
        raise ConfigError("latency table: no models to take kernels from")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: need at least 1 kernel per batch")
    opset = opset or (REMOTE_OPSET if str(target).startswith("ssh://") else LOCAL_OPSET)
    timer = timer or make_timer(
        target,
        threads=threads,
        ssh_options=ssh_options,
        remote_backend=remote_backend,
        rounds=rounds,
        runs=runs,
        timing=timing,
    )
    key = timer.key(precision=precision, opset=opset, batch=1)
    if out.exists():
        table = LatencyTable.load(out)
        table.check_key(key, purpose="to add measurements from this target")
    else:
        table = LatencyTable(path=out, key=key, created=now_iso())
    timed_kw = {} if isinstance(timer, LocalTimer) else {"precision": precision}
    measured = calibrated = 0
    with scratch_dir("table") as tmp:
        decomps: list[tuple[str, Decomposition, Path]] = []
        for i, (name, model) in enumerate(models):
            if isinstance(model, (str, Path)) and str(model).endswith(".onnx"):
                path = Path(model)
            else:
                path = export_for_table(model, Path(tmp) / f"m{i}.onnx", size=size, opset=opset)
            decomps.append((name, decompose_onnx(path, graphs=True), path))
        graphs: dict[str, KernelGraph] = {}
        kernels = {}
        for _, d, _ in decomps:
            for k, kern in d.distinct().items():
                kernels.setdefault(k, kern)
                graphs.setdefault(k, d.graphs[k])
        todo = [k for k in kernels if k not in table.kernels]
        if table.call_ms is None:
            base = timer.time_graphs([baseline_graph(opset)], **timed_kw)
            table.call_ms = float(np.median(base["__baseline__"]["wall"]))
            if base["__baseline__"].get("cpu"):
                table.call_cpu_ms = float(np.median(base["__baseline__"]["cpu"]))
            table.save()
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            measured += time_kernels(timer, table, chunk, kernels, graphs, timed_kw)
            if on_batch:
                on_batch(min(start + batch_size, len(todo)), len(todo))
        done = {c.model for c in table.calibration}
        todo_models = [(name, d, path) for name, d, path in decomps[: max(0, calibrate)] if name not in done]
        if todo_models:
            times = timer.time_models({name: path for name, _, path in todo_models}, **timed_kw)
            for name, d, _ in todo_models:
                table.calibration.append(
                    CalibrationRow(
                        model=name,
                        measured_ms=float(times[name]["wall"]),
                        kernels=[k.key for k in d.kernels],
                        measured_cpu_ms=times[name].get("cpu"),
                    )
                )
            calibrated = len(todo_models)
            table.save()
    table.save()
    return BuildResult(table, len(models), len(kernels), measured, calibrated, time.monotonic() - started)


def time_kernels(timer, table: LatencyTable, keys: list[str], kernels: dict, graphs: dict, timed_kw: dict) -> int:
    """Time the kernels ``keys`` (one batch: one alternating run on ``timer``), add them to ``table``
    and save it (resumable: a stopped build or search keeps every finished batch); returns how many."""
    times = timer.time_graphs([graphs[k] for k in keys], **timed_kw)
    for k in keys:
        kern = kernels[k]
        got = times.get(k) or {}
        values = got.get("wall") or []
        if not values:
            raise ProfilingError(f"{table.key.target}: no times came back for kernel {kern.op} ({k})")
        table.kernels[k] = KernelEntry(
            op=kern.op,
            module=kern.module,
            signature=kern.signature,
            features=kern.features,
            median_ms=float(np.median(values)),
            runs=len(values),
            cpu_ms=float(np.median(got["cpu"])) if got.get("cpu") else None,
        )
    table.save()
    return len(keys)
