"""Parsers for what Jetson tools print: trtexec (TensorRT 7.x and 8.x+), tegrastats, nvpmodel, jetson_clocks.

Pure functions over text, so they are tested on captured output without a device. Units are
the tools' own: milliseconds for trtexec, milliwatts for tegrastats rails.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rtseg_core import ConfigError, ProfilingError, parse_json

# --------------------------------------------------------------------------------------------
# trtexec console output
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrtStats:
    """One statistic block of a trtexec summary (milliseconds); ``percentiles`` maps 99.0 -> ms."""

    min: float
    max: float
    mean: float
    median: float
    percentiles: dict[float, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrtAverage:
    """One ``Average on N runs`` line (present in both the 7.x and the 8.x output)."""

    runs: int
    gpu_ms: float
    host_ms: float
    end_to_end_ms: float | None
    enqueue_ms: float | None


@dataclass(frozen=True)
class TrtexecSummary:
    """What a trtexec run printed, as far as it could be read.

    ``layout`` is ``"8.x"`` (one ``Latency: min = ..`` line per metric), ``"7.x"`` (``Host Latency``
    followed by ``min: ..`` lines) or ``None`` when no summary was found (a failed run).
    ``latency`` is trtexec's host latency (H2D + GPU compute + D2H), ``gpu_compute`` its GPU time.
    """

    layout: str | None
    tensorrt_version: str | None
    passed: bool | None  # "&&&& PASSED" / "&&&& FAILED"; None when neither line was printed
    throughput_qps: float | None
    latency: TrtStats | None
    gpu_compute: TrtStats | None
    end_to_end: TrtStats | None
    warmup_queries: int | None
    warmup_ms: float | None
    timed_queries: int | None
    averages: tuple[TrtAverage, ...]
    device_name: str | None
    compute_capability: str | None


_LOG_PREFIX = re.compile(r"^(?:\s*\[[^\]]*\])+\s*")
_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_V8_METRICS = {
    "Latency": "latency",
    "GPU Compute Time": "gpu_compute",
    "End-to-End Host Latency": "end_to_end",
}
_V8_LINE = re.compile(
    r"^(Latency|GPU Compute Time|End-to-End Host Latency|Enqueue Time|H2D Latency|D2H Latency): (.*)$"
)
_V8_FIELD = re.compile(r"(min|max|mean|median) = " + _NUM + r" ms")
_V8_PCT = re.compile(r"percentile\(" + _NUM + r"%\) = " + _NUM + r" ms")
_V7_HEADERS = {"Host Latency": "latency", "GPU Compute": "gpu_compute", "Enqueue Time": "enqueue"}
_V7_FIELD = re.compile(r"^(min|max|mean|median): " + _NUM + r" ms(?: \(end to end " + _NUM + r" ms\))?")
_V7_PCT = re.compile(r"^percentile: " + _NUM + r" ms at " + _NUM + r"%(?: \(end to end " + _NUM + r" ms at)?")
_AVERAGE = re.compile(
    r"Average on (\d+) runs - GPU latency: " + _NUM + r" ms - Host latency: " + _NUM + r" ms"
    r"(?: \((?:end to end " + _NUM + r" ms, )?enqueue " + _NUM + r" ms\))?"
)
_THROUGHPUT = re.compile(r"^[Tt]hroughput: " + _NUM + r" qps")
_WARMUP = re.compile(r"Warmup completed (\d+) queries over " + _NUM + r" ms")
_TIMED = re.compile(r"Timing trace has (\d+) queries over " + _NUM + r" s")
_RUNNING_VERSION = re.compile(r"\[TensorRT v(\d+)\]")
_VERSION_LINE = re.compile(r"^TensorRT version: ([\d.]+)")
_DEVICE = re.compile(r"^Selected Device: (.+)$")
_CC = re.compile(r"^Compute Capability: (\d+\.\d+)")


def decode_tensorrt_version(token: str) -> str | None:
    """``8001`` -> ``8.0.1``, ``8201`` -> ``8.2.1``, ``100300`` -> ``10.3.0``, ``8.6.3`` stays.

    trtexec prints its version as ``[TensorRT v8001]`` (major, minor, two-digit patch; from
    TensorRT 10 on the major takes two digits and minor/patch two each).
    """
    token = token.strip()
    if re.fullmatch(r"\d+(?:\.\d+)+", token):
        return token
    if not token.isdigit():
        return None
    if len(token) == 4:
        return f"{int(token[0])}.{int(token[1])}.{int(token[2:])}"
    if len(token) >= 6:
        return f"{int(token[:-4])}.{int(token[-4:-2])}.{int(token[-2:])}"
    return None


def _stats_from(values: Mapping[str, float], percentiles: dict[float, float]) -> TrtStats | None:
    if not {"min", "max", "mean", "median"} <= set(values):
        return None
    return TrtStats(values["min"], values["max"], values["mean"], values["median"], dict(percentiles))


def parse_trtexec_output(text: str) -> TrtexecSummary:
    """Read the console output of trtexec (TensorRT 7.x, 8.x, 10.x); missing parts come back ``None``."""
    layout: str | None = None
    version: str | None = None
    passed: bool | None = None
    throughput = None
    blocks: dict[str, TrtStats] = {}
    warmup_q = warmup_ms = timed_q = None
    averages: list[TrtAverage] = []
    device = cc = None
    # 7.x state: the block whose "min: .. ms" lines follow
    v7_block: str | None = None
    v7_vals: dict[str, float] = {}
    v7_e2e: dict[str, float] = {}
    v7_pct: dict[float, float] = {}
    v7_e2e_pct: dict[float, float] = {}

    def close_v7() -> None:
        nonlocal v7_block
        if v7_block is not None:
            stats = _stats_from(v7_vals, v7_pct)
            if stats is not None:
                blocks[v7_block] = stats
            if v7_block == "latency":
                e2e = _stats_from(v7_e2e, v7_e2e_pct)
                if e2e is not None:
                    blocks["end_to_end"] = e2e
        v7_block = None
        v7_vals.clear()
        v7_e2e.clear()
        v7_pct.clear()
        v7_e2e_pct.clear()

    for raw in text.splitlines():
        if raw.startswith("&&&& "):
            if m := _RUNNING_VERSION.search(raw):
                version = version or decode_tensorrt_version(m.group(1))
            if raw.startswith("&&&& PASSED"):
                passed = True
            elif raw.startswith("&&&& FAILED"):
                passed = False
            continue
        line = _LOG_PREFIX.sub("", raw).strip()
        if not line:
            continue
        if m := _VERSION_LINE.match(line):
            version = decode_tensorrt_version(m.group(1)) or version
        elif m := _DEVICE.match(line):
            device = m.group(1).strip()
        elif m := _CC.match(line):
            cc = m.group(1)
        elif m := _WARMUP.search(line):
            warmup_q, warmup_ms = int(m.group(1)), float(m.group(2))
        elif m := _TIMED.search(line):
            timed_q = int(m.group(1))
        elif m := _AVERAGE.search(line):
            averages.append(
                TrtAverage(
                    runs=int(m.group(1)),
                    gpu_ms=float(m.group(2)),
                    host_ms=float(m.group(3)),
                    end_to_end_ms=float(m.group(4)) if m.group(4) else None,
                    enqueue_ms=float(m.group(5)) if m.group(5) else None,
                )
            )
        elif m := _V8_LINE.match(line):
            close_v7()
            layout = "8.x"
            key = _V8_METRICS.get(m.group(1))
            if key is not None:
                vals = {name: float(v) for name, v in _V8_FIELD.findall(m.group(2))}
                pct = {float(p): float(v) for p, v in _V8_PCT.findall(m.group(2))}
                stats = _stats_from(vals, pct)
                if stats is not None:
                    blocks[key] = stats
        elif line in _V7_HEADERS:
            close_v7()
            layout = "7.x"
            v7_block = _V7_HEADERS[line]
        elif v7_block is not None and (m := _V7_FIELD.match(line)):
            v7_vals[m.group(1)] = float(m.group(2))
            if m.group(3):
                v7_e2e[m.group(1)] = float(m.group(3))
        elif v7_block is not None and (m := _V7_PCT.match(line)):
            v7_pct[float(m.group(2))] = float(m.group(1))
            if m.group(3):
                v7_e2e_pct[float(m.group(2))] = float(m.group(3))
        elif m := _THROUGHPUT.match(line):
            throughput = float(m.group(1))
        elif v7_block is not None and not line.startswith(("walltime:", "total compute time:")):
            close_v7()
    close_v7()
    return TrtexecSummary(
        layout=layout,
        tensorrt_version=version,
        passed=passed,
        throughput_qps=throughput,
        latency=blocks.get("latency"),
        gpu_compute=blocks.get("gpu_compute"),
        end_to_end=blocks.get("end_to_end"),
        warmup_queries=warmup_q,
        warmup_ms=warmup_ms,
        timed_queries=timed_q,
        averages=tuple(averages),
        device_name=device,
        compute_capability=cc,
    )


# --------------------------------------------------------------------------------------------
# trtexec --exportTimes JSON
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrtexecTimes:
    """Per-query times from ``--exportTimes`` (milliseconds), warm-up queries removed.

    ``latency_ms`` is trtexec's "Latency" (H2D + GPU compute + D2H of one query; with
    ``--noDataTransfers`` the transfers are zero), ``compute_ms`` the GPU compute time.
    """

    latency_ms: tuple[float, ...]
    compute_ms: tuple[float, ...]
    end_to_end_ms: tuple[float, ...] | None
    dropped_warmup: int
    total_entries: int


def _interval(entry: Mapping[str, Any], name: str, starts: Sequence[str], ends: Sequence[str]) -> float | None:
    if name in entry:
        return float(entry[name])
    for s, e in zip(starts, ends):
        if s in entry and e in entry:
            return float(entry[e]) - float(entry[s])
    return None


def parse_trtexec_times(
    source: str | Sequence[Mapping[str, Any]],
    *,
    warmup_queries: int | None = None,
    timed_queries: int | None = None,
    warmup_ms: float | None = None,
) -> TrtexecTimes:
    """Read a ``--exportTimes`` trace and drop its warm-up queries.

    Key names changed across releases (``inMs``/``outMs`` up to 8.0, ``h2dMs``/``d2hMs`` later;
    ``startEnqMs`` since 8.0): both are read. trtexec exports the whole trace, warm-up included.
    Which entries are warm-up is decided, in order, by: the summary's counts (``Warmup completed
    W queries`` and ``Timing trace has T queries``: W + T entries -> drop the first W, T entries ->
    drop none); else ``warmup_ms``, trtexec's own rule (a query whose compute starts before the
    warm-up time is warm-up); else nothing is dropped.
    """
    if isinstance(source, str):
        try:
            entries = parse_json(source, source="trtexec --exportTimes")  # depth and integer bounds
        except ConfigError as exc:
            raise ProfilingError(str(exc)) from None
    else:
        entries = list(source)
    if not isinstance(entries, list):
        raise ProfilingError(f"trtexec --exportTimes: expected a JSON list of queries, got {type(entries).__name__}")
    rows = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        compute = _interval(entry, "computeMs", ["startComputeMs"], ["endComputeMs"])
        if compute is None:
            continue  # not a query record (e.g. a {"count": N} header some exports carry)
        h2d = _interval(entry, "h2dMs", ["startH2dMs", "startInMs"], ["endH2dMs", "endInMs"])
        if h2d is None:
            h2d = _interval(entry, "inMs", [], [])
        d2h = _interval(entry, "d2hMs", ["startD2hMs", "startOutMs"], ["endD2hMs", "endOutMs"])
        if d2h is None:
            d2h = _interval(entry, "outMs", [], [])
        latency = entry.get("latencyMs")
        latency = float(latency) if latency is not None else compute + (h2d or 0.0) + (d2h or 0.0)
        e2e = entry.get("endToEndMs")
        start = entry.get("startComputeMs")
        rows.append((latency, compute, float(e2e) if e2e is not None else None, start))
    if not rows:
        raise ProfilingError("trtexec --exportTimes: no query records (no 'computeMs' or compute start/end keys)")

    total = len(rows)
    drop = 0
    if warmup_queries is not None and timed_queries is not None and total == warmup_queries + timed_queries:
        drop = warmup_queries
    elif timed_queries is not None and total == timed_queries:
        drop = 0
    elif warmup_ms is not None and all(r[3] is not None for r in rows):
        drop = next((i for i, r in enumerate(rows) if float(r[3]) >= warmup_ms), total)
    kept = rows[drop:]
    if not kept:
        raise ProfilingError(f"trtexec --exportTimes: all {total} queries were warm-up; raise --iterations")
    e2e_values = [r[2] for r in kept]
    return TrtexecTimes(
        latency_ms=tuple(r[0] for r in kept),
        compute_ms=tuple(r[1] for r in kept),
        end_to_end_ms=None if any(v is None for v in e2e_values) else tuple(e2e_values),  # type: ignore[arg-type]
        dropped_warmup=drop,
        total_entries=total,
    )


# --------------------------------------------------------------------------------------------
# tegrastats
# --------------------------------------------------------------------------------------------

# "POM_5V_IN 1750/1628" (Nano, TX1/TX2, Xavier NX on L4T 32: mW without unit) and
# "VDD_IN 4025mW/4025mW" (Orin, L4T 35+). The look-ahead rejects "RAM 2160/3964MB", "0/252kB".
_RAIL = re.compile(r"(?<![\w@])([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")

# The board's input rail, whose reading already is the total: the others are parts of it.
INPUT_RAILS: tuple[str, ...] = ("POM_5V_IN", "VDD_IN")


def parse_tegrastats_line(line: str) -> dict[str, tuple[float, float]]:
    """Power rails of one tegrastats line: ``{"POM_5V_IN": (1750.0, 1628.0), ...}``.

    Each value is (instantaneous, running average) in milliwatts; the unit is absent on L4T 32
    (Nano) and ``mW`` on L4T 35+ (Orin): both read the same.
    """
    return {m.group(1): (float(m.group(2)), float(m.group(3))) for m in _RAIL.finditer(line)}


@dataclass(frozen=True)
class PowerSummary:
    """Mean board input power over tegrastats samples; the idle baseline is included (not subtracted)."""

    rail: str
    mean_mw: float
    samples: int
    rails_seen: tuple[str, ...]


def summarize_tegrastats(lines: Iterable[str]) -> PowerSummary | None:
    """Average the instantaneous reading of the board input rail over ``lines``.

    The input rail (``POM_5V_IN`` on the Nano, ``VDD_IN`` on Orin / Xavier NX / TX2) is already the
    board total, so other rails are never added to it. Returns ``None`` when no line has an input
    rail (e.g. Xavier AGX on L4T 32, which prints only per-domain rails).
    """
    seen: dict[str, None] = {}
    rail: str | None = None
    values: list[float] = []
    for line in lines:
        rails = parse_tegrastats_line(line)
        seen.update(dict.fromkeys(rails))
        if rail is None:
            rail = next((r for r in INPUT_RAILS if r in rails), None)
        if rail is not None and rail in rails:
            values.append(rails[rail][0])
    if rail is None or not values:
        return None
    return PowerSummary(rail=rail, mean_mw=sum(values) / len(values), samples=len(values), rails_seen=tuple(seen))


# --------------------------------------------------------------------------------------------
# nvpmodel, jetson_clocks, L4T release
# --------------------------------------------------------------------------------------------


def parse_nvpmodel_query(text: str) -> tuple[str | None, int | None]:
    """``nvpmodel -q`` -> (mode name, mode id); ``"NV Power Mode: MAXN\\n0"`` -> ``("MAXN", 0)``."""
    name: str | None = None
    mode: int | None = None
    lines = [ln.strip() for ln in text.splitlines()]
    for i, line in enumerate(lines):
        m = re.match(r"NV Power Mode\s*:\s*(.+)$", line)
        if m:
            name = m.group(1).strip()
            for nxt in lines[i + 1 :]:
                if re.fullmatch(r"\d+", nxt):
                    mode = int(nxt)
                    break
                if nxt and not nxt.startswith("NV"):
                    break
            break
    return name, mode


def parse_nvpmodel_status(status: str, conf: str = "") -> tuple[str | None, int | None]:
    """``/var/lib/nvpmodel/status`` (``pmode:0000 fmode:quiet``) plus ``/etc/nvpmodel.conf`` for the name.

    The status file is world-readable where ``nvpmodel -q`` is not; the name comes from the
    ``< POWER_MODEL ID=0 NAME=MAXN >`` line of the configuration.
    """
    m = re.search(r"pmode:(\d+)", status)
    if not m:
        return None, None
    mode = int(m.group(1))
    for cm in re.finditer(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)", conf):
        if int(cm.group(1)) == mode:
            return cm.group(2), mode
    return None, mode


def format_power_mode(name: str | None, mode: int | None) -> str | None:
    if name is None and mode is None:
        return None
    if mode is None:
        return name
    return f"{name} (nvpmodel mode {mode})" if name else f"nvpmodel mode {mode}"


def parse_jetson_clocks_show(text: str) -> bool | None:
    """``jetson_clocks --show`` (root only) -> whether CPU and GPU clocks are pinned (min == max).

    Lines read: ``cpu0: Online=1 Governor=schedutil MinFreq=102000 MaxFreq=1479000 ...`` and
    ``GPU MinFreq=76800000 MaxFreq=921600000 CurrentFreq=...``. ``None`` when neither is present.
    """
    cpus = []
    for m in re.finditer(r"cpu\d+: Online=(\d)\S*.*?MinFreq=(\d+) MaxFreq=(\d+)", text):
        if m.group(1) == "1":
            cpus.append((int(m.group(2)), int(m.group(3))))
    gpus = [(int(a), int(b)) for a, b in re.findall(r"^GPU MinFreq=(\d+) MaxFreq=(\d+)", text, flags=re.M)]
    return clocks_pinned(cpus, gpus)


def clocks_pinned(cpus: Sequence[tuple[int, int]], gpus: Sequence[tuple[int, int]]) -> bool | None:
    """Pinned means every online CPU and the GPU run at min == max frequency (what jetson_clocks sets).

    Takes (min, max) pairs from ``jetson_clocks --show`` or from sysfs (``scaling_min_freq`` /
    ``scaling_max_freq``; devfreq ``min_freq`` / ``max_freq``). ``None`` when either side is unknown.
    """
    if not cpus or not gpus:
        return None
    return all(lo == hi for lo, hi in cpus) and all(lo == hi for lo, hi in gpus)


def parse_l4t_release(text: str) -> str | None:
    """``# R32 (release), REVISION: 6.1, ...`` (``/etc/nv_tegra_release``) -> ``"R32.6.1"``."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"R{m.group(1)}.{m.group(2)}" if m else None
