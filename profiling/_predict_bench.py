"""How accurate is the kernel-level predictor? Predicted vs measured on held-out models, beside two baselines.

The caller gives *training* models (their kernels fill the table; the overhead and both baselines
are fitted on their measured latencies) and *held-out* models (never used for any fit). Every
model, training and held-out, is measured in one alternating loop (the suite's one timer,
:func:`profiling._timing.time_graphs`), so a change of load on the shared machine hits all alike;
medians are compared. Three predictors:

- ``kernel predictor``: the kernel table (held-out kernels the table lacks come from its
  regressor), overhead fitted on the training models' measurements of this run;
- ``kernel predictor, all kernels timed``: the same after the held-out models' missing kernels
  were timed too (what a table grown during a search gives);
- ``roofline + calibration``: :class:`CalibratedEstimator` (power law) fitted on the training models;
- ``FLOPs-only linear``: measured ~ a * FLOPs + b, fitted on the training models.

Figures per method: MAPE, the share within +-10 %, Spearman's rank correlation (scipy).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from profiling._records import PREDICTED
from profiling._timing import TimingOptions
from rtseg_core import scratch_dir

if TYPE_CHECKING:
    from profiling._ssh import SSHOptions

log = logging.getLogger(__name__)

PREDICTOR_BENCH_ROUNDS = 10  # alternating rounds of this bench unless told: it times 30-odd models at 256 px


@dataclass(frozen=True)
class MethodScore:
    method: str
    clock: str  # "wall" (latency) or "cpu" (thread CPU time: what a loaded machine does not inflate)
    mape: float  # percent
    within_10: float  # share (0..1) of models predicted within +-10 %
    spearman: float
    predicted_ms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "clock": self.clock,
            "mape_percent": self.mape,
            "within_10_percent": self.within_10,
            "spearman": self.spearman,
            "predicted_ms": self.predicted_ms,
        }


@dataclass(frozen=True)
class PredictorBenchResult:
    measured_ms: dict[str, float]  # held-out models, wall-clock medians of the alternating loop
    iqr_ms: dict[str, float]
    measured_cpu_ms: dict[str, float]  # the same runs' thread CPU time medians
    scores: tuple[MethodScore, ...]
    conditions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": PREDICTED + " vs measured",
            "measured_ms": self.measured_ms,
            "measured_cpu_ms": self.measured_cpu_ms,
            "iqr_ms": self.iqr_ms,
            "scores": [s.to_dict() for s in self.scores],
            "conditions": self.conditions,
        }

    def format_table(self) -> str:
        c = self.conditions
        lines = [
            f"latency predictor bench: {len(self.measured_ms)} held-out models, {c.get('training_models')} training "
            f"models; MEASURED: ONNX Runtime {c.get('onnxruntime')} CPU, {c.get('threads')} thread(s), "
            f"{c.get('size')}x{c.get('size')}, batch 1, synthetic input, medians of {c.get('rounds')} alternating "
            f"rounds x {c.get('per_round')} runs on {c.get('device')}",
            f"load average (1/5/15 min) before {c.get('load_before')}, after {c.get('load_after')}; "
            f"table: {c.get('table_kernels')} kernels, held-out kernels found in it: {c.get('kernel_coverage', 0):.0%}",
            "wall = latency (perf_counter around session.run); cpu = the same runs' thread CPU time, which "
            "other processes on the shared cores do not inflate (1 intra-op thread computes in the caller)",
            "",
            f"  {'clock':<5} {'method':<38} {'MAPE %':>7} {'within 10 %':>12} {'Spearman':>9}",
        ]
        for s in self.scores:
            lines.append(f"  {s.clock:<5} {s.method:<38} {s.mape:7.1f} {s.within_10:12.0%} {s.spearman:9.3f}")
        for clock, measured in (("wall", self.measured_ms), ("cpu", self.measured_cpu_ms)):
            mine = [s for s in self.scores if s.clock == clock]
            if not mine or not measured:
                continue
            lines += [
                "",
                f"  {clock} ms: {'model':<20} {'measured':>9}" + "".join(f" {s.method[:16]:>17}" for s in mine),
            ]
            for n in measured:
                row = f"  {'':<9}{n[:20]:<20} {measured[n]:9.2f}"
                row += "".join(f" {s.predicted_ms[n]:17.2f}" for s in mine)
                lines.append(row)
        return "\n".join(lines)


def score(method: str, predicted: dict[str, float], measured: dict[str, float], clock: str = "wall") -> MethodScore:
    """MAPE (percent), share within +-10 % and Spearman of ``predicted`` against ``measured``."""
    from scipy.stats import spearmanr

    names = list(measured)
    p = np.array([predicted[n] for n in names])
    m = np.array([measured[n] for n in names])
    err = np.abs(p - m) / m
    rho = float(spearmanr(p, m).statistic) if len(names) > 1 else float("nan")
    return MethodScore(method, clock, float(err.mean() * 100.0), float((err <= 0.10).mean()), rho, dict(predicted))


def _load() -> str:
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def bench_predictor(
    training: Sequence[tuple[str, Any]],
    heldout: Sequence[tuple[str, Any]],
    *,
    table: str | Path | None = None,
    size: int = 256,
    timing: TimingOptions | None = None,
    opset: int | None = None,
    target: str = "local",
    ssh_options: SSHOptions | None = None,
    remote_backend: str = "onnxruntime",
    progress: Callable[[str], None] | None = None,
) -> PredictorBenchResult:
    """Measure and predict ``heldout`` (name, nn.Module) after fitting on ``training`` (see the module doc).

    ``table``: where the kernel table is kept (built/resumed there; a temporary file by default).
    ``timing``: how every model is measured (default: :data:`PREDICTOR_BENCH_ROUNDS` rounds of the suite's
    timer; its ``threads`` are the table's and the predictor's). ``target``: ``local`` (this CPU,
    all models in one alternating loop, wall and thread CPU time) or ``ssh://user@host[:port]``
    (the device profiler: kernels in batches, whole models in ``timing.device_rounds`` rotated
    rounds; wall-clock latency only).
    """
    from sklearn.linear_model import LinearRegression

    from profiling._env import describe_device, describe_environment
    from profiling._estimate import CalibratedEstimator, estimate_roofline
    from profiling._kernels import decompose_onnx
    from profiling._predictor import LatencyPredictor, export_for_table
    from profiling._records import LOCAL_OPSET, REMOTE_OPSET
    from profiling._table import CalibrationRow
    from profiling._table_build import SSHTimer, build_table
    from profiling._timing import time_graphs

    timing = timing or TimingOptions(rounds=PREDICTOR_BENCH_ROUNDS)
    threads = timing.threads

    remote = str(target).startswith("ssh://")
    opset = opset or (REMOTE_OPSET if remote else LOCAL_OPSET)
    table_kw: dict[str, Any] = {"target": target, "ssh_options": ssh_options, "remote_backend": remote_backend}
    clocks = ("wall",) if remote or threads != 1 else ("wall", "cpu")

    say = progress or (lambda msg: None)
    started = time.monotonic()
    load_before = _load()
    names = [n for n, _ in training] + [n for n, _ in heldout]
    if len(set(names)) != len(names):
        raise ValueError(f"bench: model names must be unique, got {names}")
    with scratch_dir("predbench") as tmp:
        table_path = Path(table) if table else Path(tmp) / "table.json"
        paths: dict[str, Path] = {}
        modules = dict(list(training) + list(heldout))
        for i, name in enumerate(names):
            paths[name] = export_for_table(modules[name], Path(tmp) / f"m{i}.onnx", size=size, opset=opset)
        say(f"exported {len(paths)} models ({time.monotonic() - started:.0f} s)")
        decomps = {n: decompose_onnx(p) for n, p in paths.items()}
        train_names = [n for n, _ in training]
        held_names = [n for n, _ in heldout]
        built = build_table(
            table_path,
            [(n, paths[n]) for n in train_names],
            size=size,
            threads=threads,
            opset=opset,
            calibrate=0,
            **table_kw,
        )
        say(f"table: {built.kernels_measured} kernels timed ({built.seconds:.0f} s)")
        if remote:
            timer = SSHTimer(target, ssh_options, backend=remote_backend, threads=threads, timing=timing)
            whole = timer.time_models({n: paths[n] for n in names})
            measured = {
                "wall": {n: float(whole[n]["wall"]) for n in names},
                "cpu": {},
                "wall_iqr": {n: float("nan") for n in names},
            }
        else:
            timed = time_graphs({n: paths[n] for n in names}, timing)
            measured = {
                "wall": {n: t.record.median_ms for n, t in timed.items()},
                "cpu": {n: t.samples.cpu_median_ms for n, t in timed.items() if t.samples.cpu_median_ms is not None},
                "wall_iqr": {n: t.record.iqr_ms for n, t in timed.items()},
            }
        rounds = timing.device_rounds if remote else timing.rounds
        say(f"measured {len(names)} models x {rounds} alternating rounds ({time.monotonic() - started:.0f} s)")
        table_keys = set(LatencyPredictor.load(table_path).table.kernels)
        held_kernels = [k.key for n in held_names for k in decomps[n].kernels]
        coverage = sum(k in table_keys for k in held_kernels) / max(len(held_kernels), 1)
        flops = {n: sum(k.features["flops"] for k in decomps[n].kernels) for n in names}

        def predictor_score(label: str, clock: str) -> MethodScore:
            pred = LatencyPredictor.load(table_path, clock=clock)
            # the overhead is fitted on the training models measured in this run (same load as the held-out)
            pred.table.calibration = [
                CalibrationRow(n, measured["wall"][n], [k.key for k in decomps[n].kernels], measured["cpu"].get(n))
                for n in train_names
            ]
            out = {
                n: pred.predict_decomposition(decomps[n], model_name=n, warn_unseen=False).predicted_ms
                for n in held_names
            }
            return score(label, out, {n: measured[clock][n] for n in held_names}, clock)

        def baseline_scores(clock: str) -> list[MethodScore]:
            y = {n: measured[clock][n] for n in names}
            cal = CalibratedEstimator(method="power").fit(
                [(rooflines[n], y[n]) for n in train_names], height=size, width=size
            )
            roof = {n: cal.predict_ms(rooflines[n], height=size) for n in held_names}
            lin = LinearRegression().fit(np.array([[flops[n]] for n in train_names]), [y[n] for n in train_names])
            flin = {n: float(lin.predict(np.array([[flops[n]]]))[0]) for n in held_names}
            held = {n: y[n] for n in held_names}
            return [
                score("roofline + calibration", roof, held, clock),
                score("FLOPs-only linear", flin, held, clock),
            ]

        rooflines = {n: estimate_roofline(modules[n], height=size, width=size) for n in names}
        scores = [predictor_score("kernel predictor (unseen: regressor)", c) for c in clocks]
        grown = build_table(
            table_path,
            [(n, paths[n]) for n in held_names],
            size=size,
            threads=threads,
            opset=opset,
            calibrate=0,
            **table_kw,
        )
        say(f"timed the held-out models' {grown.kernels_measured} missing kernels ({grown.seconds:.0f} s)")
        scores += [predictor_score("kernel predictor, all kernels timed", c) for c in clocks]
        for c in clocks:
            scores += baseline_scores(c)
        scores.sort(key=lambda s: s.clock != "wall")
        env = describe_environment(threads=threads)
        key = LatencyPredictor.load(table_path).table.key
        conditions = {
            "target": str(target),
            "device": key.device if remote else describe_device(),
            "onnxruntime": key.libraries.get("onnxruntime") if remote else env.get("onnxruntime"),
            "threads": threads,
            "size": size,
            "rounds": rounds,
            "per_round": timing.device_runs if remote else timing.runs,
            "method": timing.describe_device() if remote else timing.describe(),
            "training_models": len(train_names),
            "heldout_models": len(held_names),
            "table_kernels": len(table_keys),
            "kernel_coverage": coverage,
            "load_before": load_before,
            "load_after": _load(),
            "seconds": round(time.monotonic() - started, 1),
            "input": "synthetic N(0,1)",
        }
    return PredictorBenchResult(
        measured_ms={n: measured["wall"][n] for n in held_names},
        iqr_ms={n: measured["wall_iqr"][n] for n in held_names},
        measured_cpu_ms={n: measured["cpu"][n] for n in held_names if n in measured["cpu"]},
        scores=tuple(scores),
        conditions=conditions,
    )
