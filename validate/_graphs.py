"""Latency of every validated candidate on one target, comparable across candidates.

:func:`time_entries` builds the graph of every candidate and hands them all to the target's
backend from the profiling backend table (``profiling.resolve_backends``), which times them
against each other with the suite's one timer (``LatencyBackend.time_many``,
:mod:`profiling._timing`):

- ``local``: ONNX Runtime CPU here, every graph in ONE alternating loop (warm-up, then rounds in an
  order rotated per round, each one untimed and several timed runs per graph; medians);
- ``ssh://...``: the device through the SSH backend, in ``device_rounds`` rounds of one remote
  call per graph (``device_runs`` timed runs after the device's warm-up), the order rotated per
  round; a graph's latency is the median of its round medians, so a drift of the device (heat,
  clocks, other users) spreads over all graphs instead of landing on whichever ran last;
- ``jetson-nano-estimate`` / ``predict:TABLE``: the roofline estimate / the kernel-level
  prediction per graph, labelled ESTIMATED / PREDICTED, never called measured. A quantized graph
  the estimate or the table cannot answer (INT8 on the Nano roofline, an FP32 table) gets no
  latency and the reason (``LatencyBackend.check``), instead of a made-up number; an FP32 graph
  it cannot answer is an error.

What is timed (:class:`TimingEntry`). An architecture is a fresh build: weights do not change a
dense network's time. A compressed variant is its own ``validated/<variant>/model.onnx`` when
that file is on this machine, was exported at the latency size and has an opset the backend
runs; otherwise (re-applied by another worker, trained at another size than the deployment
size, or a device that needs opset 13) the graph is REBUILT here from the config plus the
pruning history (``models.replay_pruning`` on a fresh build) and re-quantized with the stored
QuantSpec (calibrated on this machine's copy of the training split). The rebuilt graph has the
same operators and shapes as the trained one; only the weights, which a dense graph's time
does not depend on, differ. The record's notes say which graph was timed.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models import RTSegConfig
from profiling import LOCAL_OPSET, MEASURED, LatencyRecord, TimingOptions
from rtseg_core import ConfigError, Record, SpeedRatio, SuiteError, text_table
from validate._seeds import PAPER

if TYPE_CHECKING:
    from profiling import LatencyBackend, SSHOptions, TimedResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimingEntry:
    """One graph to time: an architecture (``history``/``quant`` None) or a compressed variant."""

    name: str
    config: dict
    precision: str = "fp32"
    history: list | None = None  # pruning history to replay on a fresh build
    quant: dict | None = None  # the QuantSpec dict of a quantized variant
    onnx: Path | None = None  # the variant's own graph on this machine, when it is here
    size: int | None = None  # its own deployment size (a resize variant); None: the run's latency size

    def build(self):
        """The PyTorch model, pruned widths replayed (as ``models.model_from_checkpoint`` loads a pruned
        checkpoint), eval mode."""
        from models import build_model, replay_pruning

        model = build_model(RTSegConfig.from_dict(self.config, source=f"candidate {self.name}"))
        if self.history:
            model = replay_pruning(model, {"history": self.history})
        return model.eval()


@dataclass(frozen=True)
class LatencyRun:
    """Where and how :func:`time_entries` takes latency: the target, the deployment size and the
    timing (``profiling.TimingOptions``: rounds, runs, warm-up, device rounds, threads, seed).
    ``data`` calibrates a quantized variant rebuilt here."""

    target: str
    size: int
    timing: TimingOptions
    ssh_options: SSHOptions | None = None
    remote_backend: str = "auto"
    data: str = "synthetic"


@dataclass(frozen=True)
class TimedGraph(Record):
    """One candidate's latency on the run's target and what was timed.

    ``latency`` is the backend's record (its ``kind`` says MEASURED, ESTIMATED or PREDICTED); it is
    None only where an estimate or a prediction cannot answer for a quantized graph, and then
    ``skipped`` says why. ``kind``/``target``/``backend``/``device`` are the run's, present either
    way; ``round_medians_ms``: a device's per-round medians.
    """

    name: str
    params: int
    macs: int
    precision: str
    graph: str  # which graph was timed: its own file, or rebuilt here (and how); "" where no graph was needed
    kind: str
    target: str
    backend: str
    device: str
    how: str
    latency: LatencyRecord | None
    skipped: str = ""
    round_medians_ms: list = field(default_factory=list)
    # median(paper) / median(this graph) over the same rounds with its 95 % bootstrap interval
    # (profiling.speedup: whole rounds resampled); None where nothing was timed or paper was not
    vs_paper: dict | None = None
    # 95 % bootstrap interval of the median over the same rounds (the report's error bar); None as above
    median_interval_ms: list | None = None

    def __post_init__(self) -> None:
        from profiling import KINDS

        if self.kind not in KINDS:
            raise ConfigError(f"{self.name}: latency kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.latency is None and not self.skipped:
            raise ConfigError(f"{self.name}: no latency and no reason why")

    @property
    def median_ms(self) -> float | None:
        return None if self.latency is None else self.latency.median_ms

    @property
    def fps(self) -> float | None:
        return None if self.latency is None else self.latency.fps

    def to_dict(self) -> dict[str, Any]:
        """Flat, as ``validated/latency.json`` keeps it: the record's numbers beside what was timed."""
        out = {k: v for k, v in super().to_dict().items() if k not in ("latency", "schema")}
        lat = self.latency
        out.update(
            median_ms=self.median_ms,
            fps=self.fps,
            p90_ms=None if lat is None else lat.p90_ms,
            iqr_ms=None if lat is None else lat.iqr_ms,
            runs=None if lat is None else lat.runs,
            warmup=None if lat is None else lat.warmup,
            threads=None if lat is None else lat.threads,
        )
        return out


def time_entries(entries: list[TimingEntry], run: LatencyRun) -> tuple[dict[str, TimedGraph], dict[str, Any]]:
    """``({name: TimedGraph}, conditions)``: every entry's latency from one comparable run on ``run.target``."""
    from profiling import LatencyRequest, count_costs, resolve_backends, torch_threads

    (backend,) = resolve_backends(run.target, ("onnxruntime",))
    kind = backend.kind
    channels, shape = _input(entries, run.size)
    costs: dict[str, tuple[int, int]] = {}
    requests: dict[str, LatencyRequest] = {}
    graphs: dict[str, str] = {}
    skipped: dict[str, str] = {}
    with torch_threads(run.timing.threads), tempfile.TemporaryDirectory(prefix="rtseg-validate-") as tmp:
        for e in entries:
            model = e.build()
            size = e.size or run.size  # every model at its own deployment size
            cost = count_costs(model, height=size, width=size, model_name=e.name)
            costs[e.name] = (int(cost.params), int(cost.macs_fvcore))
            request = LatencyRequest(
                name=e.name, target=run.target, model=model, channels=channels, height=size, width=size,
                precision=e.precision, threads=run.timing.threads, seed=run.timing.seed, ssh_options=run.ssh_options,
                remote_backend=run.remote_backend,
            )  # fmt: skip
            # the graph first: a quantized variant is its own (re-quantized) graph, not an fp32 export
            opset = backend.onnx_opset(request)
            graphs[e.name] = ""  # "" where the backend works on the PyTorch model
            if opset is not None:
                path, graphs[e.name] = _graph(e, model, run, opset, backend, Path(tmp))
                request = request.with_onnx(path)
            try:
                backend.check(request)
            except SuiteError as exc:
                # A precision the estimate or the table does not cover (INT8 on the Nano roofline, an FP32
                # table) leaves that graph without a number; an FP32 graph it cannot answer is a broken
                # setup and stops here: the trained results are kept, rerun with a fixed target.
                if e.precision == "fp32":
                    raise
                skipped[e.name], graphs[e.name] = str(exc), ""
                continue
            requests[e.name] = request
        timed = backend.time_many(requests, run.timing) if requests else {}
    out = {}
    reference = timed.get(PAPER)
    for e in entries:
        params, macs = costs[e.name]
        t = timed.get(e.name)
        rec = t.record if t is not None else None
        out[e.name] = TimedGraph(
            name=e.name, params=params, macs=macs, precision=e.precision, graph=graphs[e.name], kind=kind,
            target=run.target, backend=rec.backend if rec else backend.name, device=rec.device if rec else run.target,
            how=_how(rec, backend, run, e.precision) if rec else f"none ({skipped[e.name]})", latency=rec,
            skipped=skipped.get(e.name, ""), round_medians_ms=_round_medians(t, run.target),
            vs_paper=speed_vs_paper(reference, t), median_interval_ms=_median_interval(t),
        )  # fmt: skip
    return out, _conditions(out, backend, run, kind, shape)


def speed_vs_paper(paper: TimedResult | None, t: TimedResult | None) -> dict | None:
    """``{ratio, low, high, rounds, clock}``: paper's median over this graph's (> 1: faster), from the
    rounds both ran in, with the timer's 95 % interval resampling whole rounds; None without samples
    (an estimate or a prediction times nothing, so it has no rounds to pair)."""
    from profiling import speedup

    if paper is None or t is None or paper.samples is None or t.samples is None:
        return None
    s = speedup(paper.samples, t.samples)
    return SpeedRatio(ratio=s.ratio, low=s.low, high=s.high, rounds=s.rounds, clock="wall").to_dict()


def _median_interval(t: TimedResult | None) -> list | None:
    from profiling import median_interval

    return None if t is None or t.samples is None else list(median_interval(t.samples.wall_ms))


def _round_medians(t: TimedResult | None, target: str) -> list:
    # a device's rounds are one remote call each: their medians show the device's drift
    if t is None or t.samples is None or not target.startswith("ssh://"):
        return []
    return t.samples.round_medians()


def _how(rec: LatencyRecord, backend: LatencyBackend, run: LatencyRun, precision: str) -> str:
    t = run.timing
    if rec.kind != MEASURED:
        return f"{rec.backend} for {rec.device}, {precision.upper()}, not a measurement"
    if run.target.startswith("ssh://"):
        return (
            f"{rec.backend} on {rec.device} over SSH, {precision.upper()}, median of {t.device_rounds} round medians "
            f"({t.device_runs} timed runs each), rounds alternating over every validated candidate"
        )
    return f"ONNX Runtime CPU {precision.upper()}, median of one alternating loop over every validated candidate"


def _conditions(out: dict[str, TimedGraph], backend, run: LatencyRun, kind: str, shape: str) -> dict[str, Any]:
    t = run.timing
    records = [g.latency for g in out.values() if g.latency is not None]
    device = records[0].device if records else run.target
    conditions: dict[str, Any] = {
        "kind": kind,
        "target": run.target,
        "input": shape,
        "threads": t.threads,
        "device": device,
    }
    if kind != MEASURED:
        label = kind.upper()
        rows = [("name", f"{label} ms", "FPS", "")]
        for g in out.values():
            if g.latency is None:
                rows.append((g.name, "-", "-", f"not answered: {g.skipped}"[:120]))
            else:
                rows.append((g.name, f"{g.latency.median_ms:.3f}", f"{g.latency.fps:.1f}", ""))
        conditions["runtime"] = f"{label}: {backend.name} per candidate (no timing run)"
    elif run.target.startswith("ssh://"):
        conditions.update(rounds=t.device_rounds, runs_per_round=t.device_runs, warmup=t.warmup)
        conditions["runtime"] = f"{run.remote_backend} on the device over SSH; {t.describe_device()}"
        rows = [("name", "median ms", "min..max of round medians", "FPS")]
        for g in out.values():
            meds = g.round_medians_ms
            rows.append((g.name, f"{g.median_ms:.3f}", f"{min(meds):.3f}..{max(meds):.3f}", f"{g.fps:.1f}"))
    else:
        from profiling import describe_environment

        conditions.update(rounds=t.rounds, runs_per_round=t.runs, warmup=t.warmup)
        conditions["runtime"] = (
            f"ONNX Runtime CPUExecutionProvider, one alternating loop over every candidate: {t.describe()}"
        )
        conditions["environment"] = describe_environment(threads=t.threads)
        rows = [("name", "prec", "median ms", "p90 ms", "IQR ms", "FPS")]
        for g in out.values():
            r = g.latency
            rows.append(
                (g.name, g.precision, f"{r.median_ms:.2f}", f"{r.p90_ms:.2f}", f"{r.iqr_ms:.2f}", f"{r.fps:.1f}")
            )
    conditions["table"] = text_table(rows)
    return conditions


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# -- graphs -----------------------------------------------------------------------------------


def _graph(e: TimingEntry, model, run: LatencyRun, opset: int, backend: LatencyBackend, work: Path) -> tuple[Path, str]:
    """``(path, which graph)``: the ONNX graph of ``e`` for ``backend``: its own file when it is here
    at the latency size and at ``opset`` (any opset where the backend runs any), else rebuilt at
    ``opset`` (module docstring)."""
    from profiling import ExportConfig, export_onnx

    size = e.size or run.size
    if e.onnx is not None and e.onnx.is_file() and _fits(e.onnx, None if backend.runs_any_opset else opset, size):
        return e.onnx, f"its own {e.onnx.name} (the trained weights)"
    opset = opset or LOCAL_OPSET
    folder = work / f"g{len(list(work.iterdir()))}"
    folder.mkdir()
    fp32 = folder / "model_fp32.onnx"
    export_onnx(model, fp32, ExportConfig(opset=opset, height=size, width=size, atol=1e-3), model_name=e.name)
    rebuilt = "rebuilt here from its config" + (" + pruning history" if e.history else "")
    if e.quant is None or e.quant.get("format") == "dsconv":
        # DSConv is frozen into float convs: its graph is the float graph of the same widths.
        variant = e.quant is not None or e.history is not None
        return fp32, f"{rebuilt}, fresh weights (opset {opset})" if variant else "fresh build"
    from compress import QuantSpec, quantize_onnx

    # int8-qat: QAT changed the weights, not the graph; its graph is its int8-static recipe's
    spec = dataclasses.replace(QuantSpec.from_dict(e.quant).graph_spec(), opset=opset)
    quantize_onnx(fp32, spec, folder / "q", data=run.data, seed=run.timing.seed, evaluate=False, measure=False)
    return folder / "q" / "model.onnx", (
        f"{rebuilt}, fresh weights, re-quantized with its stored {spec.label()} spec (opset {opset})"
    )


def _fits(path: Path, opset: int | None, size: int) -> bool:
    """Whether a variant's own graph can be timed as asked: exported at the latency size (a graph
    exported at the training size has a fixed, other input) and at ``opset`` (None: any)."""
    import onnx

    from profiling import read_onnx_input

    if read_onnx_input(path).shape[2:] != (size, size):
        return False
    model = onnx.load(str(path), load_external_data=False)
    return opset is None or opset == next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _input(entries: list[TimingEntry], size: int):
    channels = RTSegConfig.from_dict(entries[0].config).in_channels if entries else 1
    return channels, f"1x{channels}x{size}x{size}"
