"""Latency of every validated candidate on one target, comparable across candidates.

:func:`time_entries` dispatches on the target's kind (the profiling backend table,
:mod:`profiling._backends`):

- ``local``: ONNX Runtime CPU here, every graph in ONE alternating run
  (``profiling.bench_variants``: warm-up, then ``rounds`` rounds of one run per graph, medians);
- ``ssh://...``: the device through the SSH backend (``profile_remote``). A device is reached
  one graph per command, so the alternation is by rounds: each of ``device_rounds`` rounds times
  every graph once (``device_runs`` timed runs after the device script's warm-up), the order
  rotated by one graph per round so no graph always runs first or last; a graph's latency is
  the median of its per-round medians, so a drift of the device (heat, clocks, other users)
  during the run spreads over all graphs instead of landing on whichever ran last;
- ``jetson-nano-estimate`` / ``predict:TABLE``: the roofline estimate / the kernel-level
  prediction per graph, labelled ESTIMATED / PREDICTED, never called measured. A quantized graph
  the estimate or the table cannot answer (INT8 on the Nano roofline, an FP32 table) gets no
  latency and the reason, instead of a made-up number; an FP32 graph it cannot answer is an error.

What is timed (:class:`TimingEntry`). An architecture is a fresh build: weights do not change a
dense network's time. A compressed variant is its own ``validated/<variant>/model.onnx`` when
that file is on this machine, was exported at the latency size and has the opset the backend
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
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models import RTSegConfig
from profiling import ESTIMATE_TARGET, LOCAL_OPSET
from rtseg_core import SuiteError, text_table

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

    def build(self):
        """The PyTorch model, pruned widths replayed (as ``models.model_from_checkpoint`` loads a pruned
        checkpoint), eval mode."""
        from models import build_model, replay_pruning

        model = build_model(RTSegConfig.from_dict(self.config, source=f"candidate {self.name}"))
        if self.history:
            model = replay_pruning(model, {"history": self.history})
        return model.eval()


@dataclass(frozen=True)
class TimingOptions:
    """How :func:`time_entries` times: the target and its knobs (the validate verb's options)."""

    target: str = "local"
    size: int = 256
    threads: int = 1
    rounds: int = 30
    warmup: int = 5
    device_rounds: int = 5
    device_runs: int = 20
    ssh_options: Any = None
    remote_backend: str = "auto"
    data: str = "synthetic"
    seed: int = 0


def time_entries(entries: list[TimingEntry], opts: TimingOptions) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``({name: {params, macs, median_ms, fps, kind, backend, device, graph, ...}}, conditions)``.

    ``median_ms``/``fps`` are None (with ``skipped`` = the reason) where an estimate or a
    prediction cannot answer for a graph.
    """
    from profiling import count_costs, target_kind, torch_threads

    kind = target_kind(opts.target)
    out: dict[str, dict[str, Any]] = {}
    models = {}
    with torch_threads(opts.threads):
        for e in entries:
            model = e.build()
            cost = count_costs(model, height=opts.size, width=opts.size, model_name=e.name)
            out[e.name] = {"params": int(cost.params), "macs": int(cost.macs_fvcore), "precision": e.precision}
            models[e.name] = model
        with tempfile.TemporaryDirectory(prefix="rtseg-validate-") as tmp:
            timer = {"local": _local, "ssh": _device}.get(kind, _estimate)
            conditions = timer(entries, models, opts, Path(tmp), out)
    return out, conditions


# -- graphs -----------------------------------------------------------------------------------


def _graph(e: TimingEntry, model, opts: TimingOptions, opset: int | None, work: Path, out: dict) -> Path:
    """The ONNX graph of ``e`` at ``opset`` (None: any opset, a rebuilt one at LOCAL_OPSET): its own
    file when it is here at that opset, else rebuilt (module docstring)."""
    from profiling import ExportConfig, export_onnx

    if e.onnx is not None and e.onnx.is_file() and _fits(e.onnx, opset, opts.size):
        out[e.name]["graph"] = f"its own {e.onnx.name} (the trained weights)"
        return e.onnx
    opset = opset or LOCAL_OPSET
    folder = work / f"g{len(list(work.iterdir()))}"
    folder.mkdir()
    fp32 = folder / "model_fp32.onnx"
    export_onnx(model, fp32, ExportConfig(opset=opset, height=opts.size, width=opts.size, atol=1e-3), model_name=e.name)
    rebuilt = "rebuilt here from its config" + (" + pruning history" if e.history else "")
    if e.quant is None or e.quant.get("format") == "dsconv":
        # DSConv is frozen into float convs: its graph is the float graph of the same widths.
        variant = e.quant is not None or e.history is not None
        out[e.name]["graph"] = f"{rebuilt}, fresh weights (opset {opset})" if variant else "fresh build"
        return fp32
    from compress import QuantSpec, quantize_onnx

    spec = dataclasses.replace(QuantSpec.from_dict(e.quant), opset=opset)
    quantize_onnx(fp32, spec, folder / "q", data=opts.data, seed=opts.seed, evaluate=False, measure=False)
    out[e.name]["graph"] = f"{rebuilt}, fresh weights, re-quantized with its stored {spec.label()} spec (opset {opset})"
    return folder / "q" / "model.onnx"


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


# -- timers -----------------------------------------------------------------------------------


def _local(entries, models, opts: TimingOptions, work: Path, out: dict) -> dict[str, Any]:
    import numpy as np

    from profiling import bench_variants, describe_device, describe_environment, ort_variant

    channels, shape = _input(entries, opts.size)
    variants = [
        ort_variant(e.name, _graph(e, models[e.name], opts, None, work, out), threads=opts.threads,
                    precision=e.precision)
        for e in entries
    ]  # fmt: skip
    x = np.random.default_rng(opts.seed).standard_normal((1, channels, opts.size, opts.size)).astype(np.float32)
    device = describe_device()
    conditions = {
        "kind": "measured",
        "target": "local",
        "input": shape,
        "threads": opts.threads,
        "rounds": opts.rounds,
        "warmup": opts.warmup,
        "device": device,
        "runtime": "ONNX Runtime CPUExecutionProvider, one alternating run over every candidate",
        "environment": describe_environment(threads=opts.threads),
    }
    names = [e.name for e in entries]
    baseline = "paper" if "paper" in names else None
    result = bench_variants(
        variants, x, rounds=opts.rounds, warmup=opts.warmup, baseline=baseline, conditions=conditions
    )
    for v in result.variants:
        out[v.name].update(
            median_ms=v.median_ms, p90_ms=v.p90_ms, iqr_ms=v.iqr_ms, fps=v.fps, runs=v.runs, kind="measured",
            backend="onnxruntime", device=device, target="local",
            how=f"ONNX Runtime CPU {out[v.name]['precision'].upper()}, median of one alternating run over every "
            "validated candidate",
        )  # fmt: skip
    return {**conditions, "table": result.format_table()}


def _device(entries, models, opts: TimingOptions, work: Path, out: dict) -> dict[str, Any]:
    from profiling import LatencyRequest, resolve_backends

    (backend,) = resolve_backends(opts.target)
    channels, shape = _input(entries, opts.size)
    graphs = {}
    for e in entries:
        request = LatencyRequest(name=e.name, target=opts.target, model=models[e.name])
        graphs[e.name] = _graph(e, models[e.name], opts, backend.onnx_opset(request), work, out)
    per_round: dict[str, list[float]] = {e.name: [] for e in entries}
    last = {}
    n = len(entries)
    for r in range(opts.device_rounds):
        for e in entries[r % n :] + entries[: r % n]:  # rotated: each graph takes each position in turn
            request = LatencyRequest(
                name=e.name, target=opts.target, onnx_path=graphs[e.name], channels=channels, height=opts.size,
                width=opts.size, precision=e.precision, threads=opts.threads, warmup=opts.warmup,
                runs=opts.device_runs, seed=opts.seed, ssh_options=opts.ssh_options,
                remote_backend=opts.remote_backend,
            )  # fmt: skip
            (record,), _ = backend.measure(request)
            per_round[e.name].append(record.median_ms)
            last[e.name] = record
        log.info("device round %d/%d done", r + 1, opts.device_rounds)
    rows = [("name", "median ms", "min..max of round medians", "FPS")]
    for e in entries:
        meds = per_round[e.name]
        med = statistics.median(meds)
        rec = last[e.name]
        out[e.name].update(
            median_ms=med, p90_ms=None, iqr_ms=_iqr(meds), fps=1000.0 / med, runs=opts.device_runs * len(meds),
            round_medians_ms=meds, kind="measured", backend=rec.backend, device=rec.device, target=opts.target,
            how=f"{rec.backend} on {rec.device} over SSH, {e.precision.upper()}, median of {len(meds)} round "
            f"medians ({opts.device_runs} timed runs each), rounds alternating over every validated candidate",
        )  # fmt: skip
        rows.append((e.name, f"{med:.3f}", f"{min(meds):.3f}..{max(meds):.3f}", f"{1000.0 / med:.1f}"))
    device = next(iter(last.values())).device if last else opts.target
    return {
        "kind": "measured",
        "target": opts.target,
        "input": shape,
        "threads": opts.threads,
        "rounds": opts.device_rounds,
        "runs_per_round": opts.device_runs,
        "warmup": opts.warmup,
        "device": device,
        "runtime": (
            f"{opts.remote_backend} on the device over SSH; {opts.device_rounds} rounds, each timing every candidate "
            "once in an order rotated by one per round; a candidate's latency is the median of its round medians"
        ),
        "table": text_table(rows),
    }


def _estimate(entries, models, opts: TimingOptions, work: Path, out: dict) -> dict[str, Any]:
    from profiling import LatencyRequest, resolve_backends

    (backend,) = resolve_backends(opts.target)
    channels, shape = _input(entries, opts.size)
    label = "ESTIMATED" if opts.target == ESTIMATE_TARGET else "PREDICTED"
    rows = [("name", f"{label} ms", "FPS", "")]
    device = opts.target
    for e in entries:
        request = LatencyRequest(
            name=e.name, target=opts.target, model=models[e.name], channels=channels, height=opts.size,
            width=opts.size, precision=e.precision, threads=opts.threads, seed=opts.seed,
        )  # fmt: skip
        opset = backend.onnx_opset(request)
        try:
            if opset is not None:
                request = request.with_onnx(_graph(e, models[e.name], opts, opset, work, out))
            (record,), _ = backend.measure(request)
        except SuiteError as exc:
            # A precision the estimate or the table does not cover (INT8 on the Nano roofline, an FP32
            # table) leaves that graph without a number; anything else (a table that cannot predict at
            # all) is a broken setup and stops here: the trained results are kept, rerun with a fixed target.
            if e.precision == "fp32":
                raise
            out[e.name].update(median_ms=None, fps=None, kind=label.lower(), backend=backend.name, skipped=str(exc),
                               target=opts.target, device=device, how=f"none ({exc})")  # fmt: skip
            rows.append((e.name, "-", "-", f"not answered: {exc}"[:120]))
            continue
        device = record.device
        out[e.name].update(
            median_ms=record.median_ms, p90_ms=None, iqr_ms=None, fps=record.fps, runs=None, kind=record.kind,
            backend=record.backend, device=record.device, target=opts.target,
            how=f"{record.backend} for {record.device}, {e.precision.upper()}, not a measurement",
        )  # fmt: skip
        rows.append((e.name, f"{record.median_ms:.3f}", f"{record.fps:.1f}", ""))
    return {
        "kind": label.lower(),
        "target": opts.target,
        "input": shape,
        "threads": opts.threads,
        "device": device,
        "runtime": f"{label}: {backend.name} per candidate (no timing run)",
        "table": text_table(rows),
    }


def _iqr(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]
