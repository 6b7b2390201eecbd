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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from profiling._kernels import Decomposition, decompose_onnx
from profiling._records import PREDICT_PREFIX, PREDICTED, LatencyRecord
from profiling._table import MAX_TIME_MS, KernelEntry, LatencyTable, now_iso
from rtseg_core import ConfigError, ProfilingError, scratch_dir

log = logging.getLogger(__name__)

MIN_CALIBRATION = 3  # models measured whole: three parameters of the simplest overhead fit
DEFAULT_CALIBRATION = 10
# kernel families scaled separately once enough whole models are measured: timed alone, a Conv or a
# Resize does not cost what it costs inside the model (layouts, fusions across kernel borders)
FAMILIES = ("Conv", "Resize", "Gemm")
_FEATURES = ("flops", "in_bytes", "out_bytes", "param_bytes")
_COUNTS = ("nodes", "inputs", "outputs", "kernel_hw", "stride")


# -- the graph a table decomposes ------------------------------------------------------------


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
    floored: bool = False  # the overhead fit gave 0 ms: predicted as the lower bound (net kernel time + one call)


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
        self._floor_warned = False

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
        floored = math.isfinite(total) and total <= 0.0 and net + self._call_ms() > 0.0
        if floored:
            # non-negative coefficients fitted on larger models can give a tiny model nothing: all its kernels
            # within the per-call overhead (small inputs) and no weight on the kernel count or the constant.
            # A whole model costs at least its kernels' net time plus one call: predict that bound, and say so.
            total = net + self._call_ms()
            if not self._floor_warned:
                self._floor_warned = True
                log.warning(
                    "%s: the overhead fit predicts 0 ms for %s (every kernel within the %.4f ms call overhead); "
                    "predicting its lower bound, net kernel time + one call, %.4f ms (and for such models after it; "
                    "time models this small whole: latency-table build --calibrate)",
                    self.table.path,
                    model_name,
                    self._call_ms(),
                    total,
                )
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
        return Prediction(
            model_name, total, net, len(d.kernels), int(seen.sum()), int((~seen).sum()), by_op, floored=floored
        )

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
                    "the fit gave this model 0 ms, so this is its lower bound (net kernel time + one call); "
                    if pred.floored
                    else ""
                )
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
