"""The kernel latency table's file: what it holds and its one typed reader.

A table (JSON, written by :func:`profiling._predictor.build_table`)::

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
and the field: ``table.json: kernels['7c30b03b'].median_ms: -3.1 is not a positive time ...``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rtseg_core import ConfigError, Field, atomic_write_json, read_json

TABLE_SCHEMA = 1
TABLE_KIND = "rtseg-nas kernel latency table"
MAX_TIME_MS = 60_000.0  # a plausible time, kernel or whole model: below a minute
PRECISIONS = ("fp32", "fp16", "int8")
_TIME = f"a positive time (ms, finite, below {MAX_TIME_MS:g})"


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
        return _read_key(Field("table key", data))

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
        """Read and check a table file (module docstring); every problem is one ConfigError naming it."""
        path = Path(path)
        doc = Field(str(path), read_json(path))  # ConfigError naming the file when missing or not JSON
        if not isinstance(doc.value, dict) or doc.value.get("kind") != TABLE_KIND:
            raise ConfigError(f"{path}: not a kernel latency table (build one with `run.py latency-table build`)")
        if doc.value.get("schema") != TABLE_SCHEMA:
            raise ConfigError(f"{path}: table schema {doc['schema'].value!r}; this version reads {TABLE_SCHEMA}")
        doc.mapping(known={"schema", "kind"} | {f.name for f in fields(cls)} - {"path"}, required={"key", "kernels"})
        kernels = {name: _read_kernel(entry) for name, entry in doc["kernels"].mapping().items()}
        rows = [] if doc["calibration"].missing else doc["calibration"].items()
        calibration = [_read_calibration(row, kernels) for row in rows]
        return cls(
            path=path,
            key=_read_key(doc["key"]),
            kernels=kernels,
            call_ms=doc["call_ms"].number(0.0, MAX_TIME_MS, lo_open=True, optional=True),
            call_cpu_ms=doc["call_cpu_ms"].number(0.0, MAX_TIME_MS, lo_open=True, optional=True),
            calibration=calibration,
            created=doc["created"].text(optional=True) or "",
            updated=doc["updated"].text(optional=True) or "",
        )

    def check_key(self, expected: TableKey, *, purpose: str) -> None:
        """Refuse the table when its key is not ``expected``, naming every difference."""
        diff = self.key.differences(expected)
        if diff:
            raise ConfigError(
                f"{self.path}: this latency table was built for another target, so it cannot be used {purpose}: "
                + "; ".join(diff)
                + " (build a table for this target with `run.py latency-table build`)"
            )


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_key(f: Field) -> TableKey:
    f.mapping(known={x.name for x in fields(TableKey)}, required={"target", "device", "runtime", "precision"})
    libraries = {}
    for name, lib in f["libraries"].mapping().items() if not f["libraries"].missing else []:
        libraries[name] = lib.text(optional=True)
    return TableKey(
        target=f["target"].text(),
        device=f["device"].text(),
        runtime=f["runtime"].text(),
        precision=f["precision"].text(choices=PRECISIONS),
        threads=f["threads"].integer(1, 4096, optional=True),
        opset=f["opset"].integer(7, 30),
        batch=f["batch"].integer(1, 4096),
        libraries=libraries,
    )


def _time(f: Field, *, optional: bool = False) -> float | None:
    if optional and f.absent:
        return None
    v = f.value
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and 0 < v < MAX_TIME_MS
    if not ok:
        f.fail(_TIME + (" or null" if optional else ""))
    return float(v)


def _read_kernel(f: Field) -> KernelEntry:
    f.mapping(known={x.name for x in fields(KernelEntry)}, required={"op", "median_ms", "runs"})
    features = {}
    for name, value in f["features"].mapping().items() if not f["features"].missing else []:
        features[name] = value.number(0.0, 1e18)
    return KernelEntry(
        op=f["op"].text(),
        module=f["module"].text(optional=True) or "",
        signature=f["signature"].text(optional=True) or "",
        features=features,
        median_ms=_time(f["median_ms"]),
        runs=f["runs"].integer(1, 10**7),
        cpu_ms=_time(f["cpu_ms"], optional=True),
    )


def _read_calibration(f: Field, kernels: dict[str, KernelEntry]) -> CalibrationRow:
    f.mapping(known={x.name for x in fields(CalibrationRow)}, required={"model", "measured_ms", "kernels"})
    keys = []
    for item in f["kernels"].items():
        key = item.text()
        if key not in kernels:
            item.fail("a kernel of the table (its 'kernels' has no such key)")
        keys.append(key)
    if not keys:
        f["kernels"].fail("a non-empty list of the model's kernels")
    return CalibrationRow(
        model=f["model"].text(),
        measured_ms=_time(f["measured_ms"]),
        kernels=keys,
        measured_cpu_ms=_time(f["measured_cpu_ms"], optional=True),
    )
