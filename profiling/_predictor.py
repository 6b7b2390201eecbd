"""The kernel-level latency predictor: a table of kernel latencies measured on a target, and predictions.

A model's latency is predicted from the latencies of its kernels (:mod:`profiling._kernels`)
and a per-model overhead, fitted on whole models measured on the same target:

    predicted_ms = sum_f s_f * net_f + s_n * n_kernels + c,   net_f = sum over kernels of family f
                                                               of max(kernel_ms - call_ms, 0)

The families are Conv, Resize, Gemm and the rest once the table has at least 7 calibration
models (a kernel timed alone does not cost what it costs inside the model: layouts and fusions
across kernel borders differ by family), a single family below that. ``kernel_ms`` is the
kernel's median in the table; a kernel the table has not seen is predicted by a scikit-learn
gradient-boosting regressor trained on the table's kernels (log-latency from FLOPs, bytes moved,
parameters, node count, conv geometry and the kernel's leading operator). ``call_ms`` is the cost
of running an empty graph, timed with the kernels, so the per-call cost of timing a kernel alone
is not counted once per kernel. The scales ``s >= 0`` and the constant ``c >= 0`` come from a
non-negative linear fit (scikit-learn) on the table's calibration models, so a prediction is
never negative, also for a model smaller than every calibration model.

A table is built on one target (:func:`build_table`): the kernels of the given models are
exported as small ONNX graphs and timed there, locally with ONNX Runtime or on a device over SSH
through the device profiler (ONNX Runtime, or trtexec in fp32/fp16), in batches; the file is
rewritten atomically after every batch, so an interrupted build resumes where it stopped. The
table is keyed by target, device, runtime, precision, threads, opset, batch and library versions;
building onto or predicting with a table of another key is refused with the fields that differ.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from profiling._kernels import Decomposition, KernelGraph, baseline_graph, decompose_onnx
from profiling._records import LOCAL_OPSET, PREDICT_PREFIX, PREDICTED, REMOTE_OPSET, LatencyRecord
from profiling._table import MAX_TIME_MS, CalibrationRow, KernelEntry, LatencyTable, TableKey, now_iso
from rtseg_core import ConfigError, ProfilingError, check_threads, scratch_dir

log = logging.getLogger(__name__)

MIN_CALIBRATION = 3  # models measured whole: three parameters of the simplest overhead fit
DEFAULT_CALIBRATION = 10
# kernel families scaled separately once enough whole models are measured: timed alone, a Conv or a
# Resize does not cost what it costs inside the model (layouts, fusions across kernel borders)
FAMILIES = ("Conv", "Resize", "Gemm")
_FEATURES = ("flops", "in_bytes", "out_bytes", "param_bytes")
_COUNTS = ("nodes", "inputs", "outputs", "kernel_hw", "stride")


# -- timers: where kernels are timed ----------------------------------------------------------


class LocalTimer:
    """ONNX Runtime on this machine, every kernel of a batch timed in interleaved rounds."""

    def __init__(self, *, threads: int = 1, rounds: int = 5, runs: int = 5, warmup: int = 2) -> None:
        if threads < 1 or rounds < 1 or runs < 1 or warmup < 0:
            raise ConfigError("latency table: threads, rounds and runs must be >= 1 and warm-up >= 0")
        self.threads, self.rounds, self.runs, self.warmup = threads, rounds, runs, warmup
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

        rng = np.random.default_rng(0)
        sessions = []
        for g in graphs:
            sess = make_session(g.model, threads=self.threads, providers=["CPUExecutionProvider"])
            feed = {name: rng.standard_normal(shape).astype(dtype) for name, shape, dtype in g.inputs}
            for _ in range(self.warmup):
                sess.run(None, feed)
            sessions.append((g.key, sess, feed))
        times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k, _, _ in sessions}
        # rounds over the whole batch: a load change on the shared machine hits every kernel alike
        for _ in range(self.rounds):
            for key, sess, feed in sessions:
                sess.run(None, feed)
                for _ in range(self.runs):
                    c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
                    sess.run(None, feed)
                    t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                    times[key]["wall"].append((t1 - t0) / 1e6)
                    if self.threads == 1:  # the caller's CPU time is all of the work only with one thread
                        times[key]["cpu"].append((c1 - c0) / 1e6)
        return times

    def time_models(self, paths: dict[str, Path]) -> dict[str, dict[str, float | None]]:
        """Whole models in one alternating loop: {name: {"wall": median ms, "cpu": median thread CPU ms}}."""
        shapes = {_input_shape(p) for p in paths.values()}
        if len(shapes) != 1:
            raise ProfilingError(f"latency table: the models to time whole have different input shapes {shapes}")
        (n, c, h, w) = shapes.pop()
        got = measure_interleaved(
            paths, shape=(n, c, h, w), threads=self.threads, rounds=max(5, self.rounds), per_round=self.runs
        )
        return {
            name: {"wall": got["wall"][name], "cpu": got["cpu"][name] if self.threads == 1 else None} for name in paths
        }


class SSHTimer:
    """The device profiler over SSH: kernels uploaded and timed in batches, one connection per batch."""

    def __init__(
        self,
        target: str,
        options: Any = None,
        *,
        backend: str = "onnxruntime",
        threads: int | None = None,
        rounds: int = 5,
        runs: int = 5,
        warmup: int = 2,
    ) -> None:
        from profiling._ssh import SSHOptions, SSHTarget

        if backend not in ("onnxruntime", "trtexec"):
            raise ConfigError(f"--remote-backend {backend!r}: a latency table needs onnxruntime or trtexec")
        self.target = SSHTarget.parse(target).url
        self.options = options or SSHOptions()
        self.backend, self.threads = backend, threads
        self.rounds, self.runs, self.warmup = rounds, runs, warmup
        self._facts: dict[str, Any] | None = None

    def key(self, *, precision: str, opset: int, batch: int) -> TableKey:
        from profiling._remote import describe_remote_device, probe_remote

        if self._facts is None:
            self._facts = probe_remote(self.target, self.options)
        f = self._facts
        if self.backend == "onnxruntime" and precision != "fp32":
            raise ConfigError("--precision fp16/int8 for a kernel table needs --remote-backend trtexec")
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
        """Whole models on the device, one profile each (the device lock keeps them apart)."""
        from profiling._remote import profile_remote

        out: dict[str, dict[str, float | None]] = {}
        for name, path in paths.items():
            rec = profile_remote(
                path,
                self.target,
                self.options,
                backend=self.backend,
                precision=precision,
                input_shape=_input_shape(path),
                runs=max(20, self.rounds * self.runs),
                threads=self.threads,
                model_name=name,
            )
            out[name] = {"wall": rec.median_ms, "cpu": None}
        return out


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
    ssh_options: Any = None,
    remote_backend: str = "onnxruntime",
    rounds: int = 5,
    runs: int = 5,
):
    """The timer for ``target``: ``local`` or ``ssh://user@host[:port]``."""
    if target == "local":
        return LocalTimer(threads=check_threads(threads or 1, source="--threads"), rounds=rounds, runs=runs)
    if str(target).startswith("ssh://"):
        return SSHTimer(target, ssh_options, backend=remote_backend, threads=threads, rounds=rounds, runs=runs)
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


def export_for_table(model: Any, path: Path, *, size: int, opset: int, batch: int = 1) -> Path:
    """The model as the ONNX graph the predictor decomposes (DSConv frozen, BN folded, parity-checked)."""
    from profiling._export import ExportConfig, export_onnx

    channels = getattr(getattr(model, "config", None), "in_channels", 1)
    export_onnx(
        model,
        path,
        ExportConfig(opset=opset, batch=batch, height=size, width=size, channels=channels, atol=1e-3),
        model_name=path.stem,
    )
    return path


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
    ssh_options: Any = None,
    remote_backend: str = "onnxruntime",
    timer: Any = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> BuildResult:
    """Time the kernels of ``models`` (name, nn.Module or ONNX path) on ``target`` into the table ``out``.

    Resumes an existing table of the same key (kernels already timed are skipped, whole models
    already calibrated are not measured again) and refuses one of another key. ``calibrate``: how
    many of the models (the first ones) are also measured whole for the overhead fit.
    ``batch_size``: kernels per batch (per SSH connection); the table is saved after each.
    ``on_batch(done, total)`` reports progress.
    """
    started = time.monotonic()
    out = Path(out)
    if not models:
        raise ConfigError("latency table: no models to take kernels from")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: need at least 1 kernel per batch")
    opset = opset or (REMOTE_OPSET if str(target).startswith("ssh://") else LOCAL_OPSET)
    timer = timer or make_timer(
        target, threads=threads, ssh_options=ssh_options, remote_backend=remote_backend, rounds=rounds, runs=runs
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
            times = timer.time_graphs([graphs[k] for k in chunk], **timed_kw)
            for k in chunk:
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
            measured += len(chunk)
            table.save()  # resumable: a stopped build keeps every finished batch
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


# -- predicting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    model: str
    predicted_ms: float
    kernel_sum_ms: float  # sum of max(kernel - call, 0)
    kernels: int
    from_table: int
    regressed: int
    by_op: dict[str, float]  # predicted kernel ms per kernel type


def _has_cpu_times(table: LatencyTable) -> bool:
    """A one-thread local table with CPU times everywhere: predict from them (see :class:`LatencyPredictor`)."""
    return (
        table.key.threads == 1
        and bool(table.kernels)
        and all(e.cpu_ms is not None for e in table.kernels.values())
        and all(c.measured_cpu_ms is not None for c in table.calibration)
    )


def _lead(op: str) -> str:
    """The kernel's leading operator: ``Conv+Sigmoid`` -> ``Conv``, ``shift(24 ...)`` -> ``shift``."""
    return op.split("+")[0].split("(")[0]


def _feature_row(features: dict[str, float], vocab: Sequence[str], op: str) -> list[float]:
    row = [math.log1p(float(features.get(f, 0.0))) for f in _FEATURES]
    row += [float(features.get(f, 0.0)) for f in _COUNTS]
    groups = float(features.get("groups", 1.0))
    row += [math.log(max(groups, 1.0)), 1.0 if groups > 1 else 0.0]
    row += [1.0 if _lead(op) == v else 0.0 for v in vocab]
    return row


class LatencyPredictor:
    """Predictions from a :class:`LatencyTable` (see the module docstring)."""

    def __init__(self, table: LatencyTable, *, clock: str = "auto") -> None:
        if clock == "auto":
            clock = "cpu" if _has_cpu_times(table) else "wall"
        if clock not in ("wall", "cpu"):
            raise ConfigError(f"predictor clock {clock!r}: 'wall' (latency) or 'cpu' (thread CPU time)")
        if clock == "cpu" and any(e.cpu_ms is None for e in table.kernels.values()):
            raise ConfigError(f"{table.path}: this table has no CPU times (only local tables record them)")
        self.table = table
        self.clock = clock
        self._regressor = None
        self._vocab: list[str] = []
        self._overhead: tuple[np.ndarray, float] | None = None  # (scales..., per-kernel ms), intercept

    @classmethod
    def load(cls, path: str | Path, *, clock: str = "auto") -> LatencyPredictor:
        return cls(LatencyTable.load(path), clock=clock)

    def _entry_ms(self, entry: KernelEntry) -> float:
        return float(entry.cpu_ms if self.clock == "cpu" else entry.median_ms)  # type: ignore[arg-type]

    def _call_ms(self) -> float:
        return float((self.table.call_cpu_ms if self.clock == "cpu" else self.table.call_ms) or 0.0)

    @property
    def target(self) -> str:
        return f"{PREDICT_PREFIX}{self.table.path}"

    def check_request(self, *, precision: str, threads: int | None, batch: int) -> None:
        """Refuse to predict for conditions the table was not measured under."""
        k = self.table.key
        diff = []
        if precision != k.precision:
            diff.append(f"precision: table {k.precision!r} vs {precision!r}")
        # TensorRT has no thread setting: a device table built with trtexec answers any --threads
        if threads is not None and threads != k.threads and not k.runtime.startswith("tensorrt"):
            diff.append(f"threads: table {k.threads!r} vs {threads!r}")
        if batch != k.batch:
            diff.append(f"batch: table {k.batch} vs {batch}")
        if diff:
            raise ConfigError(f"{self.table.path}: the table does not answer this request: " + "; ".join(diff))

    # the regressor for kernels the table has not seen
    def _fit_regressor(self):
        if self._regressor is not None:
            return self._regressor
        from sklearn.ensemble import GradientBoostingRegressor

        entries = list(self.table.kernels.values())
        if len(entries) < 5:
            raise ProfilingError(
                f"{self.table.path}: {len(entries)} kernels are too few to train the regressor for unseen kernels"
            )
        leads = sorted({_lead(e.op) for e in entries})
        self._vocab = leads
        x = np.array([_feature_row(e.features, leads, e.op) for e in entries])
        y = np.log(np.array([max(self._entry_ms(e), 1e-4) for e in entries]))
        # settings chosen by 5-fold cross-validation over a 1,582-kernel CPU table (kernel MAPE 8.7 %
        # against 10.9 % for 300 depth-3 trees)
        reg = GradientBoostingRegressor(
            n_estimators=800, max_depth=4, learning_rate=0.03, subsample=0.9, random_state=0
        )
        reg.fit(x, y)
        self._regressor = reg
        return reg

    def kernel_ms(self, kernels) -> tuple[np.ndarray, np.ndarray]:
        """(ms per kernel, whether it came from the table) for a sequence of :class:`Kernel`."""
        ms = np.zeros(len(kernels))
        seen = np.zeros(len(kernels), dtype=bool)
        unseen = []
        for i, k in enumerate(kernels):
            entry = self.table.kernels.get(k.key)
            if entry is not None:
                ms[i], seen[i] = self._entry_ms(entry), True
            else:
                unseen.append(i)
        if unseen:
            reg = self._fit_regressor()
            x = np.array([_feature_row(kernels[i].features, self._vocab, kernels[i].op) for i in unseen])
            ms[unseen] = np.exp(reg.predict(x))
        return ms, seen

    def _net(self, ms: np.ndarray) -> float:
        return float(np.clip(ms - self._call_ms(), 0.0, None).sum())

    def _families(self) -> tuple[str, ...]:
        # enough whole models for one scale per kernel family (+ per-kernel cost + intercept), else one scale
        return FAMILIES if len(self.table.calibration) >= len(FAMILIES) + 4 else ()

    def _model_features(self, ops: Sequence[str], ms: np.ndarray) -> list[float]:
        """Net kernel ms per family (the rest last) and the kernel count: the overhead fit's inputs."""
        net = np.clip(ms - self._call_ms(), 0.0, None)
        fams = self._families()
        lead = np.array([_lead(op) for op in ops])
        out = [float(net[lead == f].sum()) for f in fams]
        out.append(float(net.sum()) - sum(out))
        out.append(float(len(ops)))
        return out

    def _fit_overhead(self):
        if self._overhead is not None:
            return self._overhead
        from sklearn.linear_model import LinearRegression

        rows = self.table.calibration
        if len(rows) < MIN_CALIBRATION:
            raise ProfilingError(
                f"{self.table.path}: {len(rows)} whole models measured; the overhead fit needs {MIN_CALIBRATION} "
                "(rebuild with --calibrate 3 or more)"
            )
        feats, y = [], []
        for row in rows:
            missing = [k for k in row.kernels if k not in self.table.kernels]
            if missing:
                raise ProfilingError(f"{self.table.path}: calibration model {row.model} has unmeasured kernels")
            entries = [self.table.kernels[k] for k in row.kernels]
            ms = np.array([self._entry_ms(e) for e in entries])
            feats.append(self._model_features([e.op for e in entries], ms))
            measured = row.measured_cpu_ms if self.clock == "cpu" else row.measured_ms
            if measured is None:
                raise ProfilingError(f"{self.table.path}: calibration model {row.model} has no {self.clock} time")
            y.append(measured)
        # every term non-negative, the per-model constant included: a free intercept fitted on a few
        # models went negative and predicted a negative latency for a model smaller than all of them
        x = np.hstack([np.array(feats), np.ones((len(feats), 1))])
        reg = LinearRegression(positive=True, fit_intercept=False).fit(x, np.array(y))
        coef = reg.coef_.astype(float)
        if not np.any(coef[:-2] > 0):
            # a few noisy whole-model times can put all weight on the constant, and then every model would
            # be predicted alike: fall back to one ratio of measured to summed kernel time
            nets = np.array([sum(f[:-1]) for f in feats])
            ratio = float(np.sum(y) / max(float(np.sum(nets)), 1e-9))
            log.warning(
                "%s: the overhead fit on %d models gave the kernels no weight; predicting measured/kernel-sum "
                "ratio %.3f x kernel sum instead (time more models whole: --calibrate)",
                self.table.path,
                len(rows),
                ratio,
            )
            coef = np.array([ratio] * (len(feats[0]) - 1) + [0.0, 0.0])
        self._overhead = (coef[:-1], float(coef[-1]))
        return self._overhead

    def describe_fit(self) -> str:
        coef, intercept = self._fit_overhead()
        names = [f"{f} x{c:.3f}" for f, c in zip((*self._families(), "rest"), coef[:-1])]
        return f"kernel sums scaled {', '.join(names)}, + {coef[-1] * 1000:.1f} us/kernel + {intercept:.3f} ms"

    def predict_decomposition(self, d: Decomposition, *, model_name: str, warn_unseen: bool = True) -> Prediction:
        if d.opset != self.table.key.opset:
            raise ConfigError(
                f"{self.table.path}: the table holds opset-{self.table.key.opset} kernels, the model was exported "
                f"at opset {d.opset} (export it at opset {self.table.key.opset})"
            )
        if d.input_shape and d.input_shape[0] != self.table.key.batch:
            raise ConfigError(
                f"{self.table.path}: table measured at batch {self.table.key.batch}, model batch {d.input_shape[0]}"
            )
        coef, intercept = self._fit_overhead()
        ms, seen = self.kernel_ms(d.kernels)
        net = self._net(ms)
        by_op: dict[str, float] = {}
        for k, v in zip(d.kernels, ms):
            by_op[k.op] = by_op.get(k.op, 0.0) + float(v)
        total = float(np.dot(coef, self._model_features([k.op for k in d.kernels], ms)) + intercept)
        if not (math.isfinite(total) and 0.0 < total < MAX_TIME_MS):
            # every table time is checked on load; this guards the fit (a latency constraint must
            # never see a prediction of 0 ms or 1e298 ms as feasible)
            raise ProfilingError(
                f"{self.table.path}: predicted {total:g} ms for {model_name}, not a plausible latency "
                f"(0 < ms < {MAX_TIME_MS:g}); the table's times or its calibration models are off: rebuild it"
            )
        if warn_unseen and (~seen).sum() > 0.5 * len(d.kernels):
            log.warning(
                "%s: %d of %d kernels are not in %s and come from the regressor (another input size or widths far "
                "from the table's models?); add the model to the table with `rtseg-nas latency-table build --arch`",
                model_name,
                int((~seen).sum()),
                len(d.kernels),
                self.table.path,
            )
        return Prediction(model_name, total, net, len(d.kernels), int(seen.sum()), int((~seen).sum()), by_op)

    def predict_onnx(self, onnx_path: str | Path, *, model_name: str | None = None) -> LatencyRecord:
        """A PREDICTED :class:`LatencyRecord` for the ONNX graph at ``onnx_path`` (static shape)."""
        d = decompose_onnx(onnx_path)
        pred = self.predict_decomposition(d, model_name=model_name or str(onnx_path))
        return self.to_record(pred, d.input_shape)

    def predict_model(self, model: Any, *, size: int = 256, model_name: str = "model") -> LatencyRecord:
        with scratch_dir("predict") as tmp:
            path = export_for_table(model, Path(tmp) / "model.onnx", size=size, opset=self.table.key.opset)
            return self.predict_onnx(path, model_name=model_name)

    def to_record(self, pred: Prediction, shape: Sequence[int]) -> LatencyRecord:
        k = self.table.key
        ms = pred.predicted_ms
        n, c, h, w = (list(shape) + [1, 1, 1, 1])[:4]
        return LatencyRecord(
            model=pred.model,
            target=self.target,
            kind=PREDICTED,
            backend="kernel-predictor",
            provider=k.runtime,
            precision=k.precision,
            device=f"{k.device} (predicted)",
            batch=int(n),
            channels=int(c),
            height=int(h),
            width=int(w),
            threads=k.threads,
            warmup=0,
            runs=0,
            median_ms=ms,
            p90_ms=None,  # one computed number, not a distribution of runs
            iqr_ms=None,
            mean_ms=ms,
            min_ms=ms,
            fps=n * 1000.0 / ms if ms > 0 else float("inf"),
            environment={
                "table": str(self.table.path),
                "table_key": k.to_dict(),
                "kernels": pred.kernels,
                "kernels_from_table": pred.from_table,
                "kernels_regressed": pred.regressed,
                "clock": self.clock,
            },
            notes=(
                f"PREDICTED, not a measurement: sum of {pred.kernels} kernel latencies ({pred.from_table} measured in "
                f"the table, {pred.regressed} by the regressor), {self.describe_fit()}; "
                + (
                    "from thread CPU times (one intra-op thread: the latency on an idle core; wall-clock latency "
                    "on a busy machine is higher); "
                    if self.clock == "cpu"
                    else "from wall-clock medians; "
                )
                + f"table {self.table.path} built on {k.target}: {k.describe()}"
            ),
            timestamp=now_iso(),
        )


def measure_interleaved(
    paths: dict[str, Path], *, shape: tuple[int, ...], threads: int, rounds: int, warmup: int = 2, per_round: int = 3
) -> dict[str, dict[str, float]]:
    """Medians of wall and thread CPU time per model, every round running every model (rotated order).

    In each round a model runs once untimed, then ``per_round`` times timed: a deployed model runs
    frame after frame with its weights and buffers in cache, and a single run right after another
    model would time a cold cache instead (3x slower for a 32x32 input).

    Returns ``{"wall": {name: ms}, "cpu": {name: ms}, "wall_iqr": {name: ms}}``. Interleaving puts a
    change of load on the shared machine on every model alike; the thread CPU time (ONNX Runtime
    computes in the calling thread with one intra-op thread) leaves out the time other processes
    held the core.
    """
    from profiling._ort import make_session, session_input

    names = list(paths)
    sessions = []
    for n in names:
        sess = make_session(paths[n], threads=threads, providers=["CPUExecutionProvider"], spin=False)
        name, dtype = session_input(sess)
        x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
        sessions.append((sess, {name: x}))
    for _ in range(warmup):
        for sess, feed in sessions:
            sess.run(None, feed)
    wall: list[list[float]] = [[] for _ in names]
    cpu: list[list[float]] = [[] for _ in names]
    for r in range(rounds):
        for k in range(len(names)):
            i = (r + k) % len(names)
            sess, feed = sessions[i]
            sess.run(None, feed)
            for _ in range(per_round):
                c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
                sess.run(None, feed)
                t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                wall[i].append((t1 - t0) / 1e6)
                cpu[i].append((c1 - c0) / 1e6)
    out: dict[str, dict[str, float]] = {"wall": {}, "cpu": {}, "wall_iqr": {}}
    for i, n in enumerate(names):
        out["wall"][n] = float(np.median(wall[i]))
        out["cpu"][n] = float(np.median(cpu[i]))
        q25, q75 = np.percentile(wall[i], [25, 75])
        out["wall_iqr"][n] = float(q75 - q25)
    return out
