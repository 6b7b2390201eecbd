"""Side-by-side benchmarks: several variants of one model timed in one alternating loop.

Timing variants one after the other lets a change in machine load (another process, thermal
throttling, turbo) land on one of them only. The variants go through the suite's one timer
(:func:`profiling._timing.time_alternating`: warm-up, then rounds in an order rotated per
round, each an untimed run and several timed runs per variant), so slow periods hit all
variants alike; medians are compared, and every speed-up has a bootstrap interval over the
paired rounds.

A :class:`Variant` is a name and a callable ``run(x)`` taking the shared input (a numpy array):
the runtime comparison here adds PyTorch eager and ONNX Runtime FP32; compression adds its
pruned and quantized models the same way (:func:`ort_variant`, :func:`pytorch_variant`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from profiling._stats import speedup_interval, summarize_times
from profiling._timing import DEFAULT_TIMING, TimingOptions, time_alternating
from rtseg_core import ProfilingError, Record, scratch_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One thing to time. ``run(x)`` does one forward pass of the shared numpy input ``x``.

    ``sync`` (optional) is called after each run before the clock stops (e.g. CUDA synchronize).
    ``backend``/``precision``/``description`` are carried into the result for reports.
    """

    name: str
    run: Callable[[np.ndarray], Any]
    backend: str = ""
    precision: str = "fp32"
    description: str = ""
    sync: Callable[[], None] | None = None


@dataclass(frozen=True)
class BenchConfig:
    """Settings of a runtime benchmark: input ``batch x C x size x size``, ``opset`` of the exported
    ONNX model, and how the variants are timed (``timing``: rounds, warm-up, runs per round,
    threads of every runtime, input seed; :class:`~profiling._timing.TimingOptions` owns the defaults)."""

    size: int = 256
    batch: int = 1
    opset: int = 17
    timing: TimingOptions = DEFAULT_TIMING

    def __post_init__(self) -> None:
        for name, low in (("size", 1), ("batch", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ProfilingError(f"BenchConfig.{name}: must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class VariantResult(Record):
    """The times of one variant (ms per forward pass of one batch) and their summary.

    ``times_ms[round]`` holds the round's timed runs; ``runs`` counts them all.
    """

    name: str
    backend: str
    precision: str
    description: str
    runs: int
    median_ms: float
    p90_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    fps: float
    times_ms: list = field(default_factory=list)


@dataclass(frozen=True)
class BenchResult:
    """All variants of one benchmark, the baseline they are compared with, and the conditions."""

    variants: tuple[VariantResult, ...]
    baseline: str
    conditions: dict = field(default_factory=dict)

    def get(self, name: str) -> VariantResult:
        for v in self.variants:
            if v.name == name:
                return v
        raise ProfilingError(f"bench: no variant named {name!r} (have {', '.join(v.name for v in self.variants)})")

    def speedups(self) -> dict[str, float]:
        """Baseline median / variant median for every variant (> 1 means faster than the baseline)."""
        base = self.get(self.baseline).median_ms
        return {v.name: base / v.median_ms for v in self.variants}

    def speedup_intervals(self) -> dict[str, tuple[float, float] | None]:
        """95 % bootstrap interval of each speed-up over the paired alternating rounds (None: no
        paired times, e.g. a result loaded without ``times_ms``)."""
        base = self.get(self.baseline).times_ms
        out: dict[str, tuple[float, float] | None] = {}
        for v in self.variants:
            paired = bool(base) and np.shape(v.times_ms) == np.shape(base)
            out[v.name] = speedup_interval(base, v.times_ms) if paired else None
        return out

    def comparisons(self) -> list[str]:
        """Sentences like ``"ORT FP32 is 2.40x faster than PyTorch eager (95 % CI 2.31-2.48x, ...)"``."""
        base = self.get(self.baseline)
        intervals = self.speedup_intervals()
        out = []
        for v in self.variants:
            if v.name == self.baseline:
                continue
            ratio = base.median_ms / v.median_ms
            word, factor = ("faster", ratio) if ratio >= 1 else ("slower", 1 / ratio)
            ci = intervals[v.name]
            if ci is None:
                spread = "no interval: rounds not paired"
            elif ratio >= 1:
                spread = f"95 % CI {ci[0]:.2f}-{ci[1]:.2f}x, bootstrap over {len(base.times_ms)} paired rounds"
            else:
                spread = f"95 % CI {1 / ci[1]:.2f}-{1 / ci[0]:.2f}x, bootstrap over {len(base.times_ms)} paired rounds"
            out.append(
                f"{v.name} is {factor:.2f}x {word} than {base.name} "
                f"({spread}; median {v.median_ms:.2f} vs {base.median_ms:.2f} ms)"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "conditions": self.conditions,
            "variants": [v.to_dict() for v in self.variants],
            "speedup_vs_baseline": self.speedups(),
            "speedup_ci95_vs_baseline": {
                k: None if v is None else list(v) for k, v in self.speedup_intervals().items()
            },
            "comparisons": self.comparisons(),
        }

    def format_table(self) -> str:
        c = self.conditions
        head = ", ".join(f"{k} {c[k]}" for k in ("model", "input", "threads", "device") if k in c)
        header = ("variant", "backend", "prec", "median ms", "p90 ms", "IQR ms", "FPS", "speed-up", "95 % CI")
        sp = self.speedups()
        ci = self.speedup_intervals()
        rows = [
            (
                v.name,
                v.backend,
                v.precision,
                f"{v.median_ms:.2f}",
                f"{v.p90_ms:.2f}",
                f"{v.iqr_ms:.2f}",
                f"{v.fps:.1f}",
                f"{sp[v.name]:.2f}x",
                "-" if ci[v.name] is None or v.name == self.baseline else f"{ci[v.name][0]:.2f}-{ci[v.name][1]:.2f}x",
            )
            for v in self.variants
        ]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines = [f"bench: {head}", fmt.format(*header), *(fmt.format(*r) for r in rows)]
        lines.append(
            f"(speed-up = median of {self.baseline} / median of the variant; {c.get('method', 'alternating rounds')}; "
            "95 % CI: percentile bootstrap over the paired rounds)"
        )
        lines += self.comparisons()
        return "\n".join(lines)


def bench_variants(
    variants: Sequence[Variant],
    x: np.ndarray,
    options: TimingOptions = DEFAULT_TIMING,
    *,
    baseline: str | None = None,
    conditions: dict | None = None,
) -> BenchResult:
    """Time ``variants`` on the shared input ``x`` with the one alternating timer (module docstring).

    ``baseline`` (default: the first variant) is what the speed-ups compare against. Threads are
    the variants' own (sessions built with ``options.threads``; PyTorch's set by the caller).
    """
    if not variants:
        raise ProfilingError("bench: no variants to time")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ProfilingError(f"bench: variant names must be unique, got {names}")
    baseline = baseline or names[0]
    if baseline not in names:
        raise ProfilingError(f"bench: baseline {baseline!r} is not a variant ({', '.join(names)})")

    def runner(v: Variant) -> Callable[[], Any]:
        def run() -> Any:
            out = v.run(x)
            if v.sync:
                v.sync()
            return out

        return run

    samples = time_alternating({v.name: runner(v) for v in variants}, options)
    batch = int(x.shape[0]) if x.ndim else 1
    results = tuple(
        VariantResult(
            name=v.name,
            backend=v.backend,
            precision=v.precision,
            description=v.description,
            runs=len(samples[v.name].times()),
            times_ms=[[round(ms, 4) for ms in row] for row in samples[v.name].wall_ms],
            **summarize_times(samples[v.name].times(), batch=batch),
        )
        for v in variants
    )
    conditions = {**(conditions or {}), "method": options.describe()}
    return BenchResult(variants=results, baseline=baseline, conditions=conditions)


def ort_variant(
    name: str, onnx_path: str | Path, *, threads: int = 1, precision: str = "fp32", description: str = ""
) -> Variant:
    """An ONNX Runtime CPU session (the suite's session options) as a bench variant.

    Thread-pool spinning is switched off when ``threads > 1``: a spinning ORT pool would steal
    cores from the variant that runs next in the alternating loop.
    """
    from profiling._ort import make_session, session_input

    session = make_session(onnx_path, threads=threads, providers=["CPUExecutionProvider"], spin=False)
    input_name, dtype = session_input(session)

    def run(x: np.ndarray) -> Any:
        return session.run(None, {input_name: x.astype(dtype, copy=False)})

    desc = description or f"ONNX Runtime CPUExecutionProvider, intra-op {threads}, ORT_ENABLE_ALL"
    return Variant(name, run, backend="onnxruntime", precision=precision, description=desc)


def pytorch_variant(model: nn.Module, name: str = "PyTorch eager", *, description: str = "") -> Variant:
    """PyTorch eager on the CPU under ``inference_mode`` (DSConv frozen, eval) as a bench variant.

    Threads are set once for the whole benchmark by :func:`run_bench` (``torch.set_num_threads``).
    """
    import copy

    from models import freeze_dsconv

    work = freeze_dsconv(copy.deepcopy(model).eval())

    def run(x: np.ndarray) -> Any:
        with torch.inference_mode():
            return work(torch.from_numpy(x))

    return Variant(
        name, run, backend="pytorch", precision="fp32", description=description or "PyTorch eager, inference_mode, CPU"
    )


def run_bench(
    source: Any,
    config: BenchConfig = BenchConfig(),
    *,
    extra_variants: Sequence[Variant] | Callable[[Any, Path], Sequence[Variant]] = (),
    model_name: str | None = None,
) -> BenchResult:
    """Benchmark ``source`` (preset, config, checkpoint or module): PyTorch eager (the baseline)
    vs ONNX Runtime FP32, plus ``extra_variants`` (a list, or a callable ``(ModelSource, tmpdir)
    -> list`` for variants that must build files first), all in one alternating loop.
    """
    from profiling._env import describe_device, describe_environment
    from profiling._export import ExportConfig, export_onnx
    from profiling._latency import torch_threads
    from profiling._source import load_source

    timing = config.timing
    src = load_source(source, seed=timing.seed, name=model_name)
    if src.model is None:
        raise ProfilingError(
            f"{src.name}: bench needs a PyTorch model (preset, config or checkpoint), not an ONNX file"
        )
    channels = src.channels or 1
    with scratch_dir("bench") as tmp:
        exported = export_onnx(
            src.model,
            Path(tmp) / "model.onnx",
            ExportConfig(
                opset=config.opset, batch=config.batch, height=config.size, width=config.size, channels=channels
            ),
            model_name=src.name,
        )
        variants = [
            pytorch_variant(src.model, "PyTorch eager"),
            ort_variant("ORT FP32", exported.path, threads=timing.threads),
        ]
        extra = extra_variants(src, Path(tmp)) if callable(extra_variants) else extra_variants
        variants += list(extra)
        x = np.random.default_rng(timing.seed).standard_normal((config.batch, channels, config.size, config.size))
        x = x.astype(np.float32)
        conditions = {
            "model": src.name,
            "input": f"{config.batch}x{channels}x{config.size}x{config.size}",
            "threads": timing.threads,
            "rounds": timing.rounds,
            "runs_per_round": timing.runs,
            "warmup": timing.warmup,
            "device": describe_device(),
            "opset": config.opset,
            "ort_intra_op_spinning": "n/a (1 thread)" if timing.threads == 1 else "off",
            "environment": describe_environment(threads=timing.threads),
        }
        with torch_threads(timing.threads):
            result = bench_variants(variants, x, timing, baseline="PyTorch eager", conditions=conditions)
    for line in result.comparisons():
        log.debug("%s", line)
    return result
