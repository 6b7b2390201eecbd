"""Comparable latency: the one timer every comparison of the suite goes through.

``bench``, ``validate``, the kernel table's build and calibration, ``bench --latency-predictor``
and the speed-ups ``quantize`` and ``prune`` print all time their models here, with one method
and one set of defaults (:class:`TimingOptions`), so one pair of models gives one ratio whichever
verb times it. (A single model's latency, as ``profile``, a search trial or a pruning step takes
it, is not a comparison: :mod:`profiling._latency` times it alone.)

The method, on this machine (:func:`time_alternating`, :func:`time_graphs`):

1. warm-up: every model runs ``warmup`` times, alternating;
2. ``rounds`` rounds; a round visits every model once, in an order rotated by one model per
   round (round ``r`` starts with model ``r mod n``), so every model is first in some round and
   none always runs right after the same other model;
3. a visit is ``untimed`` untimed runs (the model's weights and buffers back in cache after the
   other model ran) and then ``runs`` timed runs, each read on two clocks: wall time
   (``time.perf_counter_ns``) and the calling thread's CPU time (``time.thread_time_ns``; with one
   intra-op thread ONNX Runtime and PyTorch compute in the calling thread, so it leaves out the
   time other processes held the core; recorded only with ``threads == 1``);
4. a model's latency is the median of all its timed runs (p90, IQR, mean, min beside it,
   :func:`profiling._stats.summarize_times`); a speed-up is the ratio of two medians with a 95 %
   percentile-bootstrap interval that resamples whole rounds (:func:`speedup`), because a load
   change slows both members of a round alike.

A device over SSH (:func:`time_on_device`) is reached one graph per remote call, so there a
round is one call per graph (``device_runs`` timed runs after the device script's own warm-up),
the order rotated the same way, and a graph's latency is the median of its ``device_rounds``
round medians. Estimates and predictions time nothing; their backends answer per graph
(:meth:`profiling._backends.LatencyBackend.time_many`).

Why one untimed run and then several timed ones, and not one timed run per visit: a deployed
model runs frame after frame with its weights in cache; a single run right after another model
times a cold cache instead, and that costs a small model relatively more, so it changes ratios.
Measured on our 2-core AMD EPYC (1 thread, ONNX Runtime 1.32 FP32 CPUExecutionProvider, 30
rounds, warm-up 5; medians of 3 repeats, the methods themselves alternating; load average
1.0-1.9 with this job)::

    OMP_NUM_THREADS=1 python scripts/measure_timing.py OUT method 3

    pair (reference / variant)                 per visit          ref ms  var ms  ratio  ratio (thread CPU)
    paper / a narrow member, 96 px             cold: 1 timed       3.65    0.955   3.79   3.81
                                               1 untimed + 1       3.65    0.869   4.29   4.20
                                               1 untimed + 3       3.66    0.834   4.38   4.21
                                               1 untimed + 5       3.76    0.855   4.28   4.24
    paper / paper pruned to 50 % MACs, 256 px  cold: 1 timed      23.27   13.72    1.716  1.720
                                               1 untimed + 1      22.14   12.46    1.770  1.764
                                               1 untimed + 3      22.59   12.76    1.770  1.774
                                               1 untimed + 5      22.49   12.53    1.779  1.777

(the narrow member: conv widths 8-16-32, token widths 32-48, one encoder block.) Timed cold, the
small model is 10-15 % slower and the small pair's ratio 12 % lower (3 % for the
large pair); one, three or five timed runs after the untimed one agree within 2.5 % (small) and
0.5 % (large), so the default is three (90 timed runs per model at 30 rounds). Under a load
average of 4-7 from other jobs on the two cores, wall medians doubled for the 96 px `paper`
while its thread CPU time stayed at 4.3-4.5 ms: the records keep both clocks for that reason.
With these defaults one pair gives one ratio through every entry point (``OUT verbs 5``, same
machine, load 1.3-1.8): bench 1.769x, validate 1.772x, the quantize/prune speed-up 1.768x, the
latency table's calibration 1.774x for `paper` / `paper` pruned to 50 % MACs at 256 px.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from profiling._records import MEASURED, LatencyRecord
from profiling._stats import speedup_interval, summarize_times
from rtseg_core import ConfigError, ProfilingError

log = logging.getLogger(__name__)

Runner = Callable[[], Any]


@dataclass(frozen=True)
class TimingOptions:
    """How models are timed against each other: the one owner of these defaults.

    ``rounds`` rotated rounds after ``warmup`` alternating warm-up runs of each model; per model
    and round ``untimed`` untimed runs, then ``runs`` timed ones. ``threads``: intra-op threads of
    every runtime (thread CPU time is recorded only with 1). ``seed``: of the N(0, 1) input.
    ``device_rounds``/``device_runs``: an SSH device's rotated rounds and the timed runs of each
    remote call. ``untimed=0, runs=1`` times each model once right after another (a cold cache,
    kept to measure the method: module docstring).
    """

    rounds: int = 30
    warmup: int = 5
    runs: int = 3
    untimed: int = 1
    threads: int = 1
    seed: int = 0
    device_rounds: int = 5
    device_runs: int = 20
    progress: bool = False

    def __post_init__(self) -> None:
        lows = {"rounds": 1, "warmup": 0, "runs": 1, "untimed": 0, "threads": 1, "device_rounds": 1, "device_runs": 1}
        for name, low in lows.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= {low}, got {value!r}")

    def describe(self) -> str:
        """One line for notes and tables: what a median of these options is a median of."""
        return (
            f"warm-up {self.warmup} run(s) each, then {self.rounds} rounds in an order rotated per round, "
            f"each {self.untimed} untimed + {self.runs} timed run(s) per model; median of "
            f"{self.rounds * self.runs} timed runs"
        )

    def describe_device(self) -> str:
        return (
            f"{self.device_rounds} rounds in an order rotated per round, one remote call per graph and round "
            f"({self.device_runs} timed runs after the device's warm-up); median of the round medians"
        )


DEFAULT_TIMING = TimingOptions()


@dataclass(frozen=True)
class Samples:
    """The timed runs of one model in one alternating loop: ``wall_ms[round][run]`` (and thread CPU ms).

    ``cpu_ms`` is None where the calling thread's CPU time is not the model's work (more than one
    intra-op thread, a remote device).
    """

    name: str
    wall_ms: tuple[tuple[float, ...], ...]
    cpu_ms: tuple[tuple[float, ...], ...] | None = None

    def times(self, clock: str = "wall") -> list[float]:
        """Every timed run in order (round by round), on ``clock`` ("wall" or "cpu")."""
        rows = self._rows(clock)
        return [t for row in rows for t in row]

    def _rows(self, clock: str) -> tuple[tuple[float, ...], ...]:
        if clock == "wall":
            return self.wall_ms
        if clock == "cpu" and self.cpu_ms is not None:
            return self.cpu_ms
        raise ProfilingError(f"{self.name}: no {clock!r} times were recorded (thread CPU time needs 1 thread)")

    @property
    def rounds(self) -> int:
        return len(self.wall_ms)

    @property
    def median_ms(self) -> float:
        return float(statistics.median(self.times()))

    @property
    def cpu_median_ms(self) -> float | None:
        return None if self.cpu_ms is None else float(statistics.median(self.times("cpu")))

    def round_medians(self, clock: str = "wall") -> list[float]:
        return [float(statistics.median(row)) for row in self._rows(clock)]


@dataclass(frozen=True)
class TimedResult:
    """One model's record and, where it was timed (not estimated or predicted), its samples."""

    record: LatencyRecord
    samples: Samples | None = None


@dataclass(frozen=True)
class Speedup:
    """``median(reference) / median(variant)`` over the same alternating rounds, with its 95 % interval."""

    reference: str
    variant: str
    ratio: float
    low: float
    high: float
    rounds: int

    def describe(self) -> str:
        if self.ratio >= 1:
            word, r, lo, hi = "faster", self.ratio, self.low, self.high
        else:
            word, r, lo, hi = "slower", 1 / self.ratio, 1 / self.high, 1 / self.low
        return (
            f"{self.variant} is {r:.2f}x {word} than {self.reference} (95 % CI {lo:.2f}-{hi:.2f}x, bootstrap over "
            f"{self.rounds} paired alternating rounds)"
        )


def speedup(reference: Samples, variant: Samples, *, clock: str = "wall") -> Speedup:
    """The speed-up of ``variant`` over ``reference`` (> 1: faster), both from one alternating loop."""
    ref, var = reference._rows(clock), variant._rows(clock)
    if len(ref) != len(var):
        raise ProfilingError(
            f"speed-up {variant.name} vs {reference.name}: {len(var)} and {len(ref)} rounds are not one alternating "
            "loop"
        )
    ratio = statistics.median(reference.times(clock)) / statistics.median(variant.times(clock))
    low, high = speedup_interval(ref, var)
    return Speedup(reference.name, variant.name, float(ratio), low, high, len(ref))


def time_alternating(
    runners: Mapping[str, Runner],
    options: TimingOptions = DEFAULT_TIMING,
    *,
    sync: Callable[[], None] | None = None,
) -> dict[str, Samples]:
    """Time every runner (one call = one forward pass) in the alternating rounds of the module docstring.

    ``sync`` (optional) runs after every call before the clocks stop (e.g. CUDA synchronize).
    Returns ``{name: Samples}`` in the order of ``runners``.
    """
    from tqdm.auto import tqdm

    names = list(runners)
    if not names:
        raise ProfilingError("timing: no models to time")
    calls = [runners[n] for n in names]
    n = len(calls)
    log.info("timing %d model(s): %s", n, options.describe())

    def once(fn: Runner) -> None:
        fn()
        if sync is not None:
            sync()

    for _ in range(options.warmup):
        for fn in calls:
            once(fn)
    wall: list[list[tuple[float, ...]]] = [[] for _ in names]
    cpu: list[list[tuple[float, ...]]] = [[] for _ in names]
    rounds = tqdm(range(options.rounds), desc="timing rounds", unit="round", disable=not options.progress, leave=False)
    for r in rounds:
        for k in range(n):
            i = (r + k) % n
            fn = calls[i]
            for _ in range(options.untimed):
                once(fn)
            w, c = [], []
            for _ in range(options.runs):
                c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
                fn()
                if sync is not None:
                    sync()
                t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                w.append((t1 - t0) / 1e6)
                c.append((c1 - c0) / 1e6)
            wall[i].append(tuple(w))
            cpu[i].append(tuple(c))
    keep_cpu = options.threads == 1  # the caller's CPU time is all of the work only with one thread
    return {name: Samples(name, tuple(wall[i]), tuple(cpu[i]) if keep_cpu else None) for i, name in enumerate(names)}


def time_graphs(
    graphs: Mapping[str, str | Path],
    options: TimingOptions = DEFAULT_TIMING,
    *,
    precisions: Mapping[str, str] | None = None,
    shape: tuple[int, int, int, int] | None = None,
) -> dict[str, TimedResult]:
    """ONNX graphs timed with ONNX Runtime on this CPU in one alternating loop.

    Every session has the suite's options (:func:`profiling._ort.make_session`, intra-op
    ``options.threads``, idle threads not spinning, so a pool does not steal the core from the
    graph that runs next). Each graph gets an N(0, 1) input of its own shape (``options.seed``);
    ``shape`` (N, C, H, W) fills the dimensions a graph leaves dynamic. ``precisions`` labels the
    records (default: read from each graph). Returns MEASURED records whose ``warmup``/``runs``/
    ``threads`` and notes state the method.
    """
    import numpy as np

    from profiling._env import describe_device, describe_environment
    from profiling._latency import onnx_precision
    from profiling._ort import make_session, session_input

    runners: dict[str, Runner] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, path in graphs.items():
        path = Path(path)
        if not path.is_file():
            raise ProfilingError(f"{path}: ONNX file not found")
        session = make_session(path, threads=options.threads, providers=["CPUExecutionProvider"], spin=False)
        input_name, dtype = session_input(session)
        shapes[name] = _feed_shape(path, session.get_inputs()[0].shape, shape)
        x = np.random.default_rng(options.seed).standard_normal(shapes[name]).astype(dtype)
        runners[name] = session_runner(session, {input_name: x})
    samples = time_alternating(runners, options)
    env = describe_environment(threads=options.threads)
    device = describe_device()
    stamp = _now()
    out = {}
    for name, path in graphs.items():
        s = samples[name]
        n, c, h, w = shapes[name]
        precision = (precisions or {}).get(name) or onnx_precision(path)
        cpu = f"; thread CPU time median {s.cpu_median_ms:.3f} ms" if s.cpu_median_ms is not None else ""
        record = LatencyRecord(
            model=name,
            target="local",
            kind=MEASURED,
            backend="onnxruntime",
            provider="CPUExecutionProvider",
            precision=precision,
            device=device,
            batch=n,
            channels=c,
            height=h,
            width=w,
            threads=options.threads,
            warmup=options.warmup,
            runs=len(s.times()),
            host=env["hostname"],
            environment=env,
            notes=(
                f"ONNX Runtime {env['onnxruntime']} CPUExecutionProvider, intra-op {options.threads}, inter-op 1, "
                f"sequential, graph optimisation ALL, idle threads not spinning; timed with {len(graphs) - 1} other "
                f"graph(s) in one alternating loop: {options.describe()}{cpu}"
            ),
            timestamp=stamp,
            **summarize_times(s.times(), batch=n),
        )
        out[name] = TimedResult(record, s)
    return out


def _feed_shape(path: Path, declared: list, given: tuple[int, int, int, int] | None) -> tuple[int, ...]:
    """The N, C, H, W to feed: the graph's fixed dimensions, ``given`` where it leaves one dynamic."""
    if len(declared) != 4:
        raise ProfilingError(f"{path}: timing needs an N, C, H, W input, the graph declares {declared}")
    out = []
    for i, dim in enumerate(declared):
        if isinstance(dim, int) and dim > 0:
            if given is not None and given[i] != dim:
                raise ProfilingError(f"{path}: the input is fixed at {tuple(declared)}, {given} was asked for")
            out.append(dim)
        elif given is None:
            raise ProfilingError(f"{path}: the input {declared} has dynamic dimensions; give the shape to time")
        else:
            out.append(int(given[i]))
    return tuple(out)


def session_runner(session, feed: dict) -> Runner:
    """One ``session.run`` of an ONNX Runtime session on a fixed feed, as the timer calls it."""

    def run() -> Any:
        return session.run(None, feed)

    return run


def time_on_device(
    calls: Mapping[str, Callable[[int, int], LatencyRecord]], options: TimingOptions = DEFAULT_TIMING
) -> dict[str, TimedResult]:
    """Graphs on a device reached one remote call at a time, in rotated rounds (module docstring).

    ``calls[name](warmup, runs)`` times one graph once on the device and returns its record (the SSH
    backend's :meth:`~profiling._backends.SSHDevice.time_many` passes its ``measure``); every call
    gets ``options.warmup`` and ``options.device_runs``. A graph's record is its last call's, with
    the median, IQR, mean and min of its round medians and ``runs`` = all its timed runs.
    """
    names = list(calls)
    if not names:
        raise ProfilingError("timing: no graphs to time on the device")
    per_round: dict[str, list[float]] = {n: [] for n in names}
    last: dict[str, LatencyRecord] = {}
    n = len(names)
    for r in range(options.device_rounds):
        for k in range(n):
            name = names[(r + k) % n]
            last[name] = calls[name](options.warmup, options.device_runs)
            per_round[name].append(last[name].median_ms)
        log.info("device round %d/%d done", r + 1, options.device_rounds)
    out = {}
    for name in names:
        meds, rec = per_round[name], last[name]
        med = float(statistics.median(meds))
        record = dataclasses.replace(
            rec,
            median_ms=med,
            p90_ms=None,  # the round medians are few; their spread is the IQR
            iqr_ms=_iqr(meds),
            mean_ms=float(statistics.fmean(meds)),
            min_ms=float(min(meds)),
            fps=rec.batch * 1000.0 / med,
            runs=options.device_runs * len(meds),
            warmup=options.warmup,
            notes=f"{rec.notes}; {options.describe_device()} with {n - 1} other graph(s)",
        )
        out[name] = TimedResult(record, Samples(name, tuple((m,) for m in meds)))
    return out


def _iqr(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    q = statistics.quantiles(values, n=4, method="inclusive")
    return float(q[2] - q[0])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
