"""One call that counts a model and times it where asked: here, on a device over SSH, or by estimate."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from profiling._backends import LOCAL_RUNTIMES, LatencyRequest, resolve_backends, target_kind
from profiling._counts import CostRecord, count_costs
from profiling._export import ExportConfig, ExportResult, export_onnx
from profiling._onnx_input import onnx_image_size, read_onnx_input
from profiling._records import LatencyRecord
from profiling._source import ModelSource, load_source
from rtseg_core import ConfigError, check_threads, scratch_dir

if TYPE_CHECKING:
    from profiling._ssh import SSHOptions

log = logging.getLogger(__name__)

LOCAL_BACKENDS = LOCAL_RUNTIMES  # the old name

# Cost columns copied onto each latency row of the frame (names that do not clash).
_COST_COLUMNS = (
    "params",
    "params_paper_convention",
    "macs_fvcore",
    "macs_thop",
    "macs_thop_paper_convention",
    "peak_activation_bytes",
)


@dataclass(frozen=True)
class ProfileReport:
    """The cost of one model and its latency records (measured and/or estimated).

    ``cost`` is None when only an ONNX file was given. ``skipped`` lists what was asked for but
    could not be done here, with the reason. ``export`` describes the ONNX file that was timed
    when one was exported for the purpose.
    """

    model: str
    source_kind: str
    target: str
    cost: CostRecord | None
    latency: tuple[LatencyRecord, ...] = ()
    export: ExportResult | None = None
    skipped: tuple[str, ...] = ()

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per latency record with the cost columns beside it (one cost-only row if none)."""
        cost = {k: getattr(self.cost, k) for k in _COST_COLUMNS} if self.cost else {k: None for k in _COST_COLUMNS}
        if not self.latency:
            return [{"model": self.model, "kind": None, **cost}]
        out = []
        for rec in self.latency:
            row = rec.to_dict()
            row.pop("schema", None)
            row.pop("environment", None)  # nested: kept in to_dict()["latency"], not in the table
            row.update(cost)
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "source_kind": self.source_kind,
            "target": self.target,
            "cost": self.cost.to_dict() if self.cost else None,
            "latency": [r.to_dict() for r in self.latency],
            "export": self.export.to_dict() if self.export else None,
            "skipped": list(self.skipped),
            "rows": self.rows(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProfileReport:
        return cls(
            model=data["model"],
            source_kind=data.get("source_kind", ""),
            target=data.get("target", ""),
            cost=CostRecord.from_dict(data["cost"]) if data.get("cost") else None,
            latency=tuple(LatencyRecord.from_dict(r) for r in data.get("latency", [])),
            export=ExportResult.from_dict(data["export"]) if data.get("export") else None,
            skipped=tuple(data.get("skipped", [])),
        )

    def to_frame(self):
        """A pandas DataFrame, one row per latency record, cost columns included."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def format_table(self) -> str:
        """The human-readable report the CLI prints."""
        lines = [f"model: {self.model} ({self.source_kind})"]
        c = self.cost
        if c is not None:
            lines += [
                f"input: {c.batch} x {c.channels} x {c.height} x {c.width}"
                + (" (aux heads included)" if c.include_aux else " (eval graph, aux heads off)"),
                f"parameters: {c.params:,} true (sum of p.numel())  |  {c.params_paper_convention:,} by the paper's "
                "thop convention (DSConv and EFF scalars/gate not counted)",
                f"MACs (multiply-accumulates, G): fvcore {c.macs_fvcore / 1e9:.3f}  |  thop + DSConv rule "
                f"{c.macs_thop / 1e9:.3f}  |  thop without DSConv rule (paper's convention) "
                f"{c.macs_thop_paper_convention / 1e9:.3f}",
                f"peak activation memory: {c.peak_activation_bytes / 2**20:.2f} MiB ({c.peak_activation_method})",
                f"fvcore skipped (0 MACs): {c.fvcore_skipped or 'none'}",
            ]
        else:
            lines.append("costs: not counted")
        if self.export is not None:
            e = self.export
            lines.append(
                f"timed ONNX: opset {e.opset}, {e.folded_bn} Conv+BN folded, max |ORT - PyTorch| {e.max_abs_diff:.1e}"
            )
        if self.latency:
            header = ("backend", "runtime", "prec", "thr", "device", "kind", "median ms", "p90 ms", "IQR ms", "FPS")
            rows = [
                (
                    r.backend,
                    r.provider,
                    r.precision,
                    _threads_cell(r),
                    r.device,
                    r.kind,
                    f"{r.median_ms:.2f}",
                    "-" if r.p90_ms is None else f"{r.p90_ms:.2f}",  # estimates and predictions have no spread
                    "-" if r.iqr_ms is None else f"{r.iqr_ms:.2f}",
                    f"{r.fps:.1f}",
                )
                for r in self.latency
            ]
            widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
            fmt = "  ".join(f"{{:<{w}}}" if i < 6 else f"{{:>{w}}}" for i, w in enumerate(widths))
            lines.append(
                f"latency (target {self.target}, batch {self.latency[0].batch}, "
                f"{self.latency[0].height}x{self.latency[0].width}):"
            )
            lines.append("  " + fmt.format(*header))
            lines += ["  " + fmt.format(*row) for row in rows]
            env = next((r.environment for r in self.latency if r.target == "local" and r.environment), None)
            if env:
                lines.append(
                    f"  conditions: {env.get('os', '?')}, python {env.get('python', '?')}, "
                    f"torch {env.get('torch', '?')}, "
                    f"onnxruntime {env.get('onnxruntime', '?')}; 1-min load average {env.get('load_average_1m', '?')} "
                    f"on {env.get('cores', '?')} cores"
                )
            for r in (r for r in self.latency if not r.has_dispersion):
                lines.append(f"  note: {r.notes}")
            for cell, why in _THREADS_WHY.items():
                if any(_threads_cell(r) == cell for r in self.latency):
                    lines.append(f"  thr {cell}: {why}")
        for s in self.skipped:
            lines.append(f"skipped: {s}")
        return "\n".join(lines)


_THREADS_WHY = {
    "n/a (trtexec)": "TensorRT runs the graph on the device's GPU; CPU intra-op threads do not apply",
    "ORT default": "no --threads given, so ONNX Runtime chose its intra-op thread count on the device (one per "
    "physical core); give --threads N to fix and record it",
}


def _threads_cell(r: LatencyRecord) -> str:
    """The threads a row ran with, or why there is no number (explained under the table)."""
    if r.threads is not None:
        return str(r.threads)
    if r.backend == "tensorrt":
        return "n/a (trtexec)"
    if r.backend == "onnxruntime" and r.kind == "measured":
        return "ORT default"
    return "-"


def profile_model(
    source: Any,
    *,
    target: str = "local",
    size: int | None = None,
    width: int | None = None,
    batch: int = 1,
    backends: Sequence[str] = LOCAL_RUNTIMES,
    threads: int | None = None,
    warmup: int | None = None,
    runs: int | None = None,
    precision: str | None = None,
    ssh_options: SSHOptions | None = None,
    remote_backend: str = "auto",
    opset: int | None = None,
    count: bool = True,
    include_aux: bool = False,
    seed: int = 0,
    device: str = "auto",
    model_name: str | None = None,
    progress: bool = False,
) -> ProfileReport:
    """Count and time one model. Returns a :class:`ProfileReport`.

    ``source``: preset name, config JSON, checkpoint, ``.onnx`` file, ``RTSegConfig`` or module.
    ``target`` chooses the backends from :data:`profiling._backends.TARGETS`: ``"local"`` (this
    machine: ``backends`` of onnxruntime and/or pytorch), ``"ssh://user@host[:port]"`` (exports
    ONNX at ``opset``, 13 by default, and runs :func:`profiling.profile_remote` with
    ``remote_backend``), ``"jetson-nano-estimate"`` (a roofline estimate, labelled as such) or
    ``"predict:TABLE"`` (the kernel-level predictor built on a target, labelled predicted).
    ``size``: input height (and width unless ``width``), 256 by default, or the ONNX file's fixed
    size. ``threads``: intra-op threads locally (default 1); on a remote device None lets its
    runtime choose. ``warmup``/``runs``: defaults 10/50 locally, the remote profiler's own
    remotely. ``precision``: fp32 by default for models, read from the graph for ONNX files.
    """
    chosen = resolve_backends(target, backends)  # unknown targets and local runtimes fail here
    # None means "the default"; 0 must not quietly mean it too (``--size 0`` once measured 256 px)
    for option, value, low, high in (
        ("--size", size, 8, 4096),
        ("--size (width)", width, 8, 4096),
        ("--batch", batch, 1, 4096),
        ("--threads", threads, 1, 1024),
        ("--warmup", warmup, 0, 10**6),
        ("--runs", runs, 1, 10**6),
    ):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
            raise ConfigError(f"{option}: must be an integer from {low} to {high}, got {value!r}")
    if threads is not None and target_kind(target) == "local":  # on a device, its cores are not ours to count
        check_threads(threads, source="--threads")
    src: ModelSource = load_source(source, seed=seed, name=model_name)
    skipped: list[str] = []
    if src.onnx_path is not None:
        height, width, channels = onnx_image_size(src.onnx_path, size, width)
        precision = precision or read_onnx_input(src.onnx_path).precision
    else:
        height = size or 256
        width = width or height
        channels = src.channels
        precision = precision or "fp32"
        from models import RTSegConfig

        arch = getattr(src.model, "config", None)
        if isinstance(arch, RTSegConfig):  # before an export or a forward pass at this size allocates it
            arch.check_memory(size=max(height, width), batch=batch)
    cost = None
    if count and src.model is not None:
        from rtseg_core import resolve_device

        cost = count_costs(
            src.model,
            height=height,
            width=width,
            channels=channels,
            include_aux=include_aux,
            model_name=src.name,
            device=resolve_device(device),
        )
    elif count:
        skipped.append("costs: an ONNX file has no PyTorch model to count (give --arch or --checkpoint)")
    request = LatencyRequest(
        name=src.name,
        target=str(target),
        model=src.model,
        onnx_path=src.onnx_path,
        batch=batch,
        channels=channels,
        height=height,
        width=width,
        precision=precision,
        threads=threads,
        warmup=warmup,
        runs=runs,
        seed=seed,
        device=device,
        progress=progress,
        ssh_options=ssh_options,
        remote_backend=remote_backend,
        opset_given=opset,
    )
    for backend in chosen:  # every refusal before any export or timing
        backend.check(request)
    records: list[LatencyRecord] = []
    export: ExportResult | None = None
    with scratch_dir("profile") as tmp:
        exported: dict[int, Path] = {}
        for backend in chosen:
            wanted = backend.onnx_opset(request)
            job = request
            if wanted is not None and src.onnx_path is None:
                if wanted not in exported:
                    log.debug("exporting %s to ONNX (opset %d) and checking it against PyTorch", src.name, wanted)
                    export = export_onnx(
                        src.model,
                        Path(tmp) / f"{Path(src.name).stem}.opset{wanted}.onnx",
                        ExportConfig(opset=wanted, batch=batch, height=height, width=width, channels=channels),
                        model_name=src.name,
                    )
                    exported[wanted] = Path(export.path)
                job = request.with_onnx(exported[wanted])
            got, why = backend.measure(job)
            records += got
            skipped += why
    if export is not None:
        export = _forget_temp_path(export)
    return ProfileReport(src.name, src.kind, str(target), cost, tuple(records), export, tuple(skipped))


def _forget_temp_path(export: ExportResult) -> ExportResult:
    # The temp file is gone once the report exists: do not leave a dangling path in it.
    return replace(export, path="(temporary, deleted)")
