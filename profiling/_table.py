"""The kernel latency table's file: what it holds and its one typed reader.

A table (JSON, written by :func:`profiling._table_build.build_table`)::

    {"schema": 1, "kind": "rtseg-nas kernel latency table",
     "key": {target, device, runtime, precision, threads, opset, batch, libraries},
     "call_ms": ms | null, "call_cpu_ms": ms | null,        # the empty graph: per-call cost
     "kernels": {KEY: {op, module, signature, features: {name: number}, median_ms, runs, cpu_ms}},
     "calibration": [{model, measured_ms, kernels: [KEY, ...], measured_cpu_ms}],
     "created": ISO time, "updated": ISO time}

:meth:`LatencyTable.load` checks every field before a prediction uses it: a time is finite,
positive and below :data:`MAX_TIME_MS` (a kernel or a whole model of this family never takes a
minute; a negative, zero or 1e300 time gave predictions of -50 ms, 0 ms or 1e298 ms that
latency constraints accepted), every field has its type, no field is unknown, and every
calibration model's kernels are in the table. A bad field is one error line naming the file
and the field: ``table.json: 'kernels['7c30b03b'].median_ms' must be a positive finite number <= 60000
(ms), got -3.1``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rtseg_core import ConfigError, Fields, InputFileError, atomic_write_json, brief, read_json

TABLE_SCHEMA = 1
TABLE_KIND = "rtseg-nas kernel latency table"
MAX_TIME_MS = 60_000.0  # a plausible time, kernel or whole model: below a minute
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class TableKey:
    """What a table's numbers are valid for; two tables with different keys are not comparable."""

    target: str  # "local" or "ssh://user@host:port"
    device: str
    runtime: str  # "onnxruntime CPUExecutionProvider", "tensorrt 8.0.1", ...
    precision: str
    threads: int | None
    opset: int
    batch: int
    libraries: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableKey:
        return _read_key(Fields(data, "table key"))

    def differences(self, other: TableKey) -> list[str]:
        """'field: this vs other' for every field (and library version) that differs."""
        out = []
        for name in ("target", "device", "runtime", "precision", "threads", "opset", "batch"):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                out.append(f"{name}: table {a!r} vs {b!r}")
        for lib in sorted(set(self.libraries) | set(other.libraries)):
            a, b = self.libraries.get(lib), other.libraries.get(lib)
            if a != b:
                out.append(f"{lib}: table {a!r} vs {b!r}")
        return out

    def describe(self) -> str:
        libs = ", ".join(f"{k} {v}" for k, v in sorted(self.libraries.items()) if v)
        thr = "runtime default" if self.threads is None else str(self.threads)
        return (
            f"{self.device}; {self.runtime} {self.precision}, threads {thr}, batch {self.batch}, "
            f"opset {self.opset} ({libs})"
        )


@dataclass
class KernelEntry:
    op: str
    module: str
    signature: str
    features: dict[str, float]
    median_ms: float
    runs: int
    cpu_ms: float | None = None  # median thread CPU time (local tables): robust to a loaded machine


@dataclass
class CalibrationRow:
    """A whole model measured on the target, with its kernels (keys, in order) for the overhead fit."""

    model: str
    measured_ms: float
    kernels: list[str]
    measured_cpu_ms: float | None = None


@dataclass
class LatencyTable:
    path: Path
    key: TableKey
    kernels: dict[str, KernelEntry] = field(default_factory=dict)
    call_ms: float | None = None  # median of the empty graph: the per-call cost in each kernel timing
    call_cpu_ms: float | None = None
    calibration: list[CalibrationRow] = field(default_factory=list)
    created: str = ""
    updated: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": TABLE_SCHEMA,
            "kind": TABLE_KIND,
            "key": self.key.to_dict(),
            "call_ms": self.call_ms,
            "call_cpu_ms": self.call_cpu_ms,
            "kernels": {k: asdict(v) for k, v in self.kernels.items()},
            "calibration": [asdict(c) for c in self.calibration],
            "created": self.created,
            "updated": self.updated,
        }

    def save(self) -> None:
        self.updated = now_iso()
        atomic_write_json(self.path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read and check a table file (module docstring); every problem is one error naming it and the field.

        An :class:`InputFileError`: the run fails on a damaged input file (exit status 1).
        """
        try:
            return cls._read(Path(path))
        except InputFileError:
            raise
        except ConfigError as exc:
            raise InputFileError(str(exc)) from None

    @classmethod
    def _read(cls, path: Path) -> LatencyTable:
        data = read_json(path)  # ConfigError naming the file when missing, not JSON or nested absurdly
        if not isinstance(data, dict) or data.get("kind") != TABLE_KIND:
            raise ConfigError(f"{path}: not a kernel latency table (build one with `rtseg-nas latency-table build`)")
        if data.get("schema") != TABLE_SCHEMA:
            raise ConfigError(f"{path}: table schema {brief(data.get('schema'))}; this version reads {TABLE_SCHEMA}")
        f = Fields(data, str(path))
        f.unknown({"schema", "kind"} | {x.name for x in fields(cls)} - {"path"})
        kernels = {}
        for key, entry in f.object("kernels").data.items():
            kernels[key] = _read_kernel(Fields(entry, str(path), f"kernels[{brief(key, limit=40)}]."))
        rows = f.list("calibration", optional=True) or []
        calibration = [
            _read_calibration(Fields(row, str(path), f"calibration[{i}]."), kernels) for i, row in enumerate(rows)
        ]
        return cls(
            path=path,
            key=_read_key(f.object("key")),
            kernels=kernels,
            call_ms=_time(f, "call_ms", optional=True),
            call_cpu_ms=_time(f, "call_cpu_ms", optional=True),
            calibration=calibration,
            created=f.str("created", optional=True) or "",
            updated=f.str("updated", optional=True) or "",
        )

    def check_key(self, expected: TableKey, *, purpose: str) -> None:
        """Refuse the table when its key is not ``expected``, naming every difference."""
        diff = self.key.differences(expected)
        if diff:
            raise ConfigError(
                f"{self.path}: this latency table was built for another target, so it cannot be used {purpose}: "
                + "; ".join(diff)
                + " (build a table for this target with `rtseg-nas latency-table build`)"
            )


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_key(f: Fields) -> TableKey:
    f.unknown({x.name for x in fields(TableKey)})
    libraries = f.object("libraries", optional=True)
    return TableKey(
        target=f.str("target"),
        device=f.str("device"),
        runtime=f.str("runtime"),
        precision=f.str("precision", choices=PRECISIONS),
        threads=f.int("threads", minimum=1, maximum=4096, optional=True),
        opset=f.int("opset", minimum=7, maximum=30),
        batch=f.int("batch", minimum=1, maximum=4096),
        libraries={} if libraries is None else {str(k): libraries.str(k, optional=True) for k in libraries.data},
    )


def _time(f: Fields, key: str, *, optional: bool = False) -> float | None:
    """A time in ms: finite, positive and below :data:`MAX_TIME_MS`."""
    value = f.number(key, positive=True, maximum=MAX_TIME_MS, optional=optional)
    return None if value is None else float(value)


def _read_kernel(f: Fields) -> KernelEntry:
    f.unknown({x.name for x in fields(KernelEntry)})
    found = f.object("features", optional=True)
    features = {} if found is None else {k: float(found.number(k, minimum=0.0, maximum=1e18)) for k in found.data}
    return KernelEntry(
        op=f.str("op"),
        module=f.str("module", optional=True) or "",
        signature=f.str("signature", optional=True) or "",
        features=features,
        median_ms=_time(f, "median_ms"),
        runs=f.int("runs", minimum=1, maximum=10**7),
        cpu_ms=_time(f, "cpu_ms", optional=True),
    )


def _read_calibration(f: Fields, kernels: dict[str, KernelEntry]) -> CalibrationRow:
    f.unknown({x.name for x in fields(CalibrationRow)})
    keys = f.list("kernels")
    if not keys:
        raise f.error("kernels", "must list the model's kernels", keys)
    for i, key in enumerate(keys):
        if not isinstance(key, str) or key not in kernels:
            raise f.error(f"kernels[{i}]", "must be a kernel of the table (its 'kernels' has no such key)", key)
    return CalibrationRow(
        model=f.str("model"),
        measured_ms=_time(f, "measured_ms"),
        kernels=list(keys),
        measured_cpu_ms=_time(f, "measured_cpu_ms", optional=True),
    )
