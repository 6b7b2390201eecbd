"""On-device profiling over SSH: upload an ONNX model, time it on the device, build a LatencyRecord.

The device runs ``profiling/device/rtseg_device_profiler.py`` (Python 3.6, standard library)
in a fresh ``mktemp -d`` directory that is removed afterwards, also on failure. The script
returns raw per-run times, tool output and device facts as JSON; every statistic is computed
here, with :func:`profiling._stats.summarize_times`, the same way as for local measurements.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from profiling._onnx_input import OnnxInputInfo, read_onnx_input
from profiling._parsers import (
    clocks_pinned,
    format_power_mode,
    parse_jetson_clocks_show,
    parse_l4t_release,
    parse_nvpmodel_query,
    parse_nvpmodel_status,
    parse_tegrastats_line,
    parse_trtexec_output,
    parse_trtexec_times,
    summarize_tegrastats,
)
from profiling._records import LatencyRecord
from profiling._ssh import RemoteShell, SSHOptions, SSHTarget
from profiling._stats import summarize_times
from rtseg_core import ConfigError, ProfilingError, RemoteProfilingError, parse_json

log = logging.getLogger(__name__)

DEVICE_SCRIPT = Path(__file__).resolve().parent / "device" / "rtseg_device_profiler.py"
BACKENDS = ("auto", "onnxruntime", "trtexec")
PRECISIONS = ("fp32", "fp16", "int8")
ORT_DEFAULT_WARMUP = 20  # iterations
TRT_DEFAULT_WARMUP_MS = 200  # trtexec's own default

_REMOTE_MODEL = "model.onnx"
_REMOTE_SCRIPT = "rtseg_device_profiler.py"
_REMOTE_PARAMS = "params.json"
_REMOTE_TIMES = "times.json"


# the one ONNX input reader (profiling._onnx_input); the old name stays for callers
inspect_onnx = read_onnx_input


def _check_arguments(
    info: OnnxInputInfo,
    onnx_path: Path,
    *,
    backend: str,
    precision: str,
    input_shape: tuple[int, ...],
    warmup: int | None,
    runs: int,
    threads: int | None,
) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"--remote-backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if len(input_shape) != 4 or any(int(d) < 1 for d in input_shape):
        raise ConfigError(f"input shape {tuple(input_shape)} (--batch/--size): need 4 positive sizes N, C, H, W")
    if runs < 1:
        raise ConfigError(f"--runs {runs}: need at least 1 timed run")
    if warmup is not None and warmup < 0:
        raise ConfigError(f"--warmup {warmup}: cannot be negative")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads {threads}: need at least 1 (or leave it unset for the runtime's default)")
    if len(info.shape) != 4:
        raise ConfigError(f"{onnx_path}: input {info.name!r} has rank {len(info.shape)}; an NCHW image input expected")
    for got, want in zip(info.shape, input_shape):
        if got is not None and got != want:
            raise ConfigError(
                f"{onnx_path}: input {info.name!r} has fixed shape {info.shape}, but the requested input shape is "
                f"{tuple(input_shape)}; profile with the model's shape or re-export it"
            )
    if backend == "onnxruntime" and precision == "fp16":
        raise ConfigError(
            "--precision fp16 with --remote-backend onnxruntime: the device profiler runs ONNX Runtime on the CPU, "
            "which has no fp16 speed-up; use --remote-backend trtexec for fp16 on the GPU"
        )
    if precision == "int8" and backend in ("onnxruntime", "auto") and not info.quantized:
        raise ConfigError(
            f"{onnx_path}: --precision int8 with ONNX Runtime needs a quantized model, and this one has no "
            "QuantizeLinear/QLinear* operators; quantize it first (compress) or profile it as fp32"
        )


def _remote_error(target: SSHTarget, options: SSHOptions, error: Mapping[str, Any]) -> RemoteProfilingError:
    code = error.get("code", "internal")
    message = error.get("message", "")
    if code == "trtexec-missing":
        return RemoteProfilingError(
            f"trtexec not found on host {target}: {message}. Install TensorRT (JetPack puts trtexec at "
            "/usr/src/tensorrt/bin/trtexec), pass its path (SSHOptions.trtexec_path), "
            "or use --remote-backend onnxruntime"
        )
    if code == "onnxruntime-missing":
        return RemoteProfilingError(
            f"ONNX Runtime not installed on host {target}: {message}. Install the onnxruntime wheel for "
            f"{options.remote_python} on the device (for JetPack 4.6: the aarch64 wheel for Python 3.6), "
            "or use --remote-backend trtexec"
        )
    if code == "no-backend":
        return RemoteProfilingError(
            f"{target}: no inference runtime on the device: {message}. Install TensorRT (trtexec) or onnxruntime"
        )
    if code in ("int8-not-applicable", "device-busy", "lock-failed", "threads"):
        return RemoteProfilingError(f"{target}: {message}")
    detail = f"\n{error['traceback']}" if error.get("traceback") else ""
    return RemoteProfilingError(f"{target}: device-side profiling failed [{code}]: {message}{detail}")


def _run_device_script(
    shell: RemoteShell,
    params: dict[str, Any],
    upload_model: Path | None,
    extra_files: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """Check the interpreter, make the work directory, upload, run, always remove the directory.

    ``extra_files``: more files (plain names) to upload into the work directory, e.g. a batch of
    kernel graphs. Returns the device script's JSON object (``ok`` may be false: the caller words
    the error).
    """
    target, options = shell.target, shell.options
    python = shlex.quote(options.remote_python)
    check = shell.run(f"{python} -c 'import sys; print(\"%d.%d.%d\" % tuple(sys.version_info[:3]))'", timeout=60)
    if check.returncode == 127 or (check.returncode != 0 and "not found" in check.stderr):
        raise RemoteProfilingError(
            f"python not found on host {target}: {options.remote_python!r} is not on the device's PATH "
            f"({check.stderr.strip()}); JetPack ships /usr/bin/python3, or set SSHOptions.remote_python"
        )
    if check.returncode != 0 or not re.fullmatch(r"\d+\.\d+\.\d+", check.stdout.strip()):
        raise RemoteProfilingError(
            f"{target}: {options.remote_python!r} did not run as Python (exit {check.returncode}: "
            f"{(check.stderr or check.stdout).strip()[:300]})"
        )
    py_version = check.stdout.strip()
    if tuple(int(x) for x in py_version.split(".")[:2]) < (3, 6):
        raise RemoteProfilingError(
            f"{target}: {options.remote_python} is Python {py_version}; the device-side profiler needs 3.6+"
        )

    parent = options.remote_tmpdir
    _remove_stale_workdirs(shell, python, parent)
    template = posixpath.join(parent, "rtseg-profile.XXXXXXXX") if parent else None
    mktemp = f"mktemp -d {shlex.quote(template)}" if template else 'mktemp -d "${TMPDIR:-/tmp}/rtseg-profile.XXXXXXXX"'
    # .owner = the pid of this connection's sshd process ($PPID of the command's shell): once it is
    # gone, the directory is stale and the next connection removes it (_remove_stale_workdirs)
    mk = shell.run(f'd=$({mktemp}) && echo "$PPID" > "$d/.owner" && echo "$d"', timeout=60)
    workdir = mk.stdout.strip()
    if mk.returncode != 0 or not workdir.startswith("/") or "\n" in workdir:
        raise RemoteProfilingError(
            f"{target}: cannot create a temporary directory with mktemp -d"
            f"{' in ' + parent if parent else ''} ({mk.stderr.strip() or workdir!r})"
        )
    log.info("%s: work directory %s", target, workdir)
    try:
        params = dict(params)
        if upload_model is not None:
            params["model"] = posixpath.join(workdir, _REMOTE_MODEL)
            shell.put_file(upload_model, params["model"])
        for name, data in (extra_files or {}).items():
            shell.put_bytes(data, posixpath.join(workdir, name))
        if params.get("kernels"):
            for k in params["kernels"]:
                k["model"] = posixpath.join(workdir, k["model"])
        params["times_file"] = posixpath.join(workdir, _REMOTE_TIMES)
        params["workdir"] = workdir
        params["exit_on_hangup"] = True  # stdin reaches EOF when the SSH connection drops
        shell.put_file(DEVICE_SCRIPT, posixpath.join(workdir, _REMOTE_SCRIPT))
        shell.put_bytes(json.dumps(params).encode("utf-8"), posixpath.join(workdir, _REMOTE_PARAMS))
        limit = max(1, int(options.command_timeout))
        script = shlex.quote(posixpath.join(workdir, _REMOTE_SCRIPT))
        param_file = shlex.quote(posixpath.join(workdir, _REMOTE_PARAMS))
        # coreutils `timeout` stops the device-side work too when the host gives up
        command = (
            f"cd {shlex.quote(workdir)} && if command -v timeout >/dev/null 2>&1; "
            f"then exec timeout -k 10 {limit} {python} {script} {param_file}; "
            f"else exec {python} {script} {param_file}; fi"
        )
        started = time.monotonic()
        res = shell.run(command, timeout=options.command_timeout + 20)
        if res.returncode == 137 and time.monotonic() - started < limit:
            # `timeout` passes on a SIGKILL from elsewhere as 137 too; before the limit, it was not ours
            raise RemoteProfilingError(
                f"{target}: the device-side profiler was killed (SIGKILL: the out-of-memory killer or a user) "
                f"after {time.monotonic() - started:.0f} s; stderr: {res.stderr.strip()[-1500:] or '(empty)'}"
            )
        if res.returncode in (124, 137):
            raise RemoteProfilingError(
                f"{target}: the measurement did not finish within {options.command_timeout:g} s and was stopped "
                "(raise SSHOptions.command_timeout / --command-timeout; a first TensorRT engine build on a Nano "
                "takes minutes)"
            )
        try:
            answer = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else None
            result = parse_json(answer, source=f"{target}: the device's answer") if answer else None
        except ConfigError:  # not JSON, or nested or numbered beyond what the device script prints
            result = None
        if not isinstance(result, dict) and res.returncode == -1:
            raise RemoteProfilingError(
                f"{target}: the device-side profiler was killed (no exit status: a signal, or the out-of-memory "
                f"killer); stderr: {res.stderr.strip()[-1500:] or '(empty)'}"
            )
        if not isinstance(result, dict):
            raise RemoteProfilingError(
                f"{target}: the device-side profiler exited with code {res.returncode} and printed no result; "
                f"stderr: {res.stderr.strip()[-1500:] or '(empty)'}"
            )
        if result.get("protocol") != 1:
            raise RemoteProfilingError(
                f"{target}: device-side profiler speaks protocol {result.get('protocol')!r}, not 1"
            )
        if res.stderr.strip():
            log.debug("%s: device stderr:\n%s", target, res.stderr.strip()[-4000:])
        return result
    finally:
        _remove_workdir(shell, workdir)


# Run on the device by its own Python: removes rtseg-profile.* directories whose owning connection
# is gone (an SSH connection that dropped before the job could clean up after itself), and ones
# without an owner file older than a day. Python 3.6, standard library, no shell interpolation.
_STALE_CLEANUP = """
import os, shutil, sys, time
parent = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else os.environ.get("TMPDIR") or "/tmp"
try:
    names = os.listdir(parent)
except OSError as exc:
    sys.stderr.write("{}: {}\\n".format(parent, exc.strerror or exc))
    sys.exit(3)
for name in names:
    path = os.path.join(parent, name)
    if not name.startswith("rtseg-profile.") or os.path.islink(path) or not os.path.isdir(path):
        continue
    try:
        st = os.stat(path)
        if st.st_uid != os.getuid():
            continue
        with open(os.path.join(path, ".owner"), "rb") as fh:
            pid = int(fh.read().strip() or b"0")
    except (OSError, ValueError):
        pid = None
        if time.time() - st.st_mtime < 86400:
            continue
    if pid:
        try:
            os.kill(pid, 0)
            continue
        except PermissionError:
            continue
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)
    print(path)
"""


def _remove_stale_workdirs(shell: RemoteShell, python: str, parent: str | None) -> None:
    res = shell.run(f"{python} -c {shlex.quote(_STALE_CLEANUP)} {shlex.quote(parent or '')}", timeout=60)
    last = (res.stderr.strip().splitlines() or [""])[-1][:300]
    if res.returncode == 3:  # the parent folder cannot be listed: nothing can be made in it either
        where = f"--remote-tmpdir {parent}" if parent else "the device's TMPDIR"
        raise RemoteProfilingError(
            f"{shell.target}: {where}: not a folder the device's user can use ({last}); give an existing, "
            "writable folder on the device"
        )
    if res.returncode != 0:
        log.warning("%s: stale work directories not checked (exit %d: %s)", shell.target, res.returncode, last)
    for path in res.stdout.split():
        log.info("%s: removed the stale work directory %s (its connection had dropped)", shell.target, path)


def _remove_workdir(shell: RemoteShell, workdir: str) -> None:
    try:
        rm = shell.run(f"rm -rf -- {shlex.quote(workdir)}", timeout=120)
    except RemoteProfilingError as exc:
        log.warning("%s: could not remove %s: %s", shell.target, workdir, exc)
        return
    if rm.returncode != 0:
        log.warning("%s: rm -rf %s failed: %s", shell.target, workdir, rm.stderr.strip())


def probe_remote(target: SSHTarget | str, options: SSHOptions | None = None) -> dict[str, Any]:
    """Connect, run the device-side script without a model, return its device facts.

    The facts dict has the device-tree model, ``uname``, CPU model, L4T release, Python,
    onnxruntime and TensorRT versions, the trtexec / tegrastats paths found and the raw power
    mode output, plus ``"description"`` (as :class:`LatencyRecord.device` words it).
    """
    target = SSHTarget.parse(target) if isinstance(target, str) else target
    options = options or SSHOptions()
    with RemoteShell.connect(target, options) as shell:
        result = _run_device_script(shell, _base_params(options, probe_only=True), None)
    if not result.get("ok"):
        raise _remote_error(shell.target, options, result.get("error") or {})
    facts = dict(result.get("facts") or {})
    facts["description"] = describe_remote_device(facts)
    return facts


def _base_params(options: SSHOptions, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "trtexec_path": options.trtexec_path,
        "tegrastats_path": options.tegrastats_path,
        "tegrastats_interval_ms": options.tegrastats_interval_ms,
        "trtexec_timeout_s": max(1.0, options.command_timeout - 5),
    }
    params.update(extra)
    return params


def profile_remote(
    onnx_path: str | Path,
    target: SSHTarget | str,
    options: SSHOptions | None = None,
    *,
    backend: str = "auto",
    precision: str = "fp32",
    input_shape: Sequence[int] = (1, 1, 256, 256),
    warmup: int | None = None,
    runs: int = 100,
    threads: int | None = None,
    model_name: str | None = None,
    workspace_mib: int = 256,
    lock_timeout_s: float | None = None,
    lock_path: str | None = None,
) -> LatencyRecord:
    """Time ``onnx_path`` on the SSH ``target`` and return a measured :class:`LatencyRecord`.

    ``backend``: ``"trtexec"`` (TensorRT on the GPU; fp32, fp16, int8 where the GPU has fast
    INT8 — refused on the Nano's Maxwell GPU), ``"onnxruntime"`` (CPU; fp32, or int8 for an
    already-quantized model) or ``"auto"`` (trtexec if present, else onnxruntime; int8 prefers
    onnxruntime). ``input_shape`` is N, C, H, W (batch N, usually 1). ``warmup`` counts
    iterations for onnxruntime (default 20) but milliseconds for trtexec (``--warmUp``, default
    200), as the record's ``notes`` say; ``runs`` timed iterations. ``threads``: ONNX Runtime
    intra-op threads (``None``: its default; ignored by TensorRT).

    Timing: onnxruntime runs are timed one by one with ``time.perf_counter`` around
    ``session.run`` on a fixed random input; trtexec's per-query latencies come from its
    ``--exportTimes`` trace with the warm-up queries removed. Power (where tegrastats exists)
    is the mean of the board input rail over the timed loop; the idle baseline is not subtracted.

    The device script holds the device lock (``lock_path``, else ``options.device_lock``, else
    /tmp/rtseg-device-profiler.lock on the device) while it times, so concurrent profiles of one
    device queue; a run waits up to ``lock_timeout_s`` (default: half the command timeout) and
    then fails naming the host. The record's ``environment["device_lock"]`` says how long it
    waited and when it held the lock.
    """
    onnx_path = Path(onnx_path)
    target = SSHTarget.parse(target) if isinstance(target, str) else target
    options = options or SSHOptions()
    shape = tuple(int(d) for d in input_shape)
    info = inspect_onnx(onnx_path)
    _check_arguments(
        info,
        onnx_path,
        backend=backend,
        precision=precision,
        input_shape=shape,
        warmup=warmup,
        runs=runs,
        threads=threads,
    )
    if info.quantized and precision != "int8":
        log.warning("%s has quantized operators but is profiled as %s", onnx_path, precision)
    params = _base_params(
        options,
        backend=backend,
        precision=precision,
        input_shape=list(shape),
        input_name=info.name,
        dynamic_input=info.dynamic,
        runs=int(runs),
        threads=threads,
        workspace_mib=int(workspace_mib),
        seed=0,
        **_lock_params(options, lock_timeout_s, lock_path),
    )
    # the warm-up unit depends on the backend, which "auto" picks on the device: send both
    params["warmup_iterations"] = ORT_DEFAULT_WARMUP if warmup is None else int(warmup)
    params["warmup_ms"] = TRT_DEFAULT_WARMUP_MS if warmup is None else int(warmup)
    with RemoteShell.connect(target, options) as shell:
        result = _run_device_script(shell, params, onnx_path)
    target = shell.target  # the user and port really used (an ssh_config alias's Port, not 22)
    if not result.get("ok"):
        raise _remote_error(target, options, result.get("error") or {})
    used = result.get("backend")
    return record_from_device_result(
        result,
        target=target,
        model=model_name or str(onnx_path),
        precision=precision,
        input_shape=shape,  # type: ignore[arg-type]
        warmup=params["warmup_ms"] if used == "tensorrt" else params["warmup_iterations"],
        runs=int(runs),
        threads=threads,
    )


def describe_remote_device(facts: Mapping[str, Any]) -> str:
    """Words for :attr:`LatencyRecord.device`: the device-tree model (Jetson) or CPU + ``uname -a``."""
    l4t = parse_l4t_release(facts.get("nv_tegra_release") or "")
    cpu = facts.get("cpu_model")
    n = facts.get("cpu_count")
    cpu_words = f"{cpu}, {n} CPUs" if cpu and n else (cpu or (f"{n} CPUs" if n else None))
    model = facts.get("device_tree_model")
    if model:
        extras = [x for x in (f"L4T {l4t}" if l4t else None, cpu_words) if x]
        if facts.get("compute_capability"):
            extras.append(f"GPU compute capability {facts['compute_capability']}")
        return f"{model} ({'; '.join(extras)})" if extras else model
    parts = [x for x in (cpu_words, f"L4T {l4t}" if l4t else None, facts.get("uname")) if x]
    return "; ".join(parts) or "unknown device"


def _power(
    result: Mapping[str, Any], median_ms: float, batch: int
) -> tuple[float | None, float | None, str | None, str]:
    """(mean mW, mJ per frame, rail, note) from the tegrastats samples inside the timed window."""
    power = result.get("power") or {}
    if not power.get("tool"):
        return None, None, None, "power not measured (tegrastats not found on the device)"
    if power.get("error"):
        return None, None, None, f"power not measured ({power['error']})"
    window = power.get("window")
    samples = power.get("samples") or []
    if not window or window[0] is None:
        return None, None, None, "power not measured (the timed loop's start was not seen)"
    t0, t1 = float(window[0]), float(window[1])
    inside = [line for t, line in samples if t0 <= float(t) <= t1]
    summary = summarize_tegrastats(inside)
    if summary is None:
        if not inside:
            why = (
                f"no tegrastats sample fell inside the {1000 * (t1 - t0):.0f} ms timed loop "
                f"(interval {power.get('interval_ms')} ms; raise --runs)"
            )
        else:
            rails = sorted({r for ln in inside for r in parse_tegrastats_line(ln)})
            why = f"tegrastats shows no board input rail (POM_5V_IN / VDD_IN); rails seen: {', '.join(rails) or 'none'}"
        return None, None, None, f"power not measured ({why})"
    energy = summary.mean_mw * median_ms / 1000.0 / batch
    note = (
        f"power: mean of {summary.samples} tegrastats {summary.rail} readings (board input, other rails not added; "
        f"--interval {power.get('interval_ms')} ms) during the timed loop, idle baseline not subtracted; "
        f"energy per frame = mean power x median latency / batch"
    )
    return summary.mean_mw, energy, summary.rail, note


def _power_mode(facts: Mapping[str, Any]) -> str | None:
    query = facts.get("nvpmodel_query") or {}
    if query.get("returncode") == 0:
        mode = format_power_mode(*parse_nvpmodel_query(query.get("output") or ""))
        if mode:
            return mode
    if facts.get("nvpmodel_status"):
        return format_power_mode(*parse_nvpmodel_status(facts["nvpmodel_status"], facts.get("nvpmodel_conf") or ""))
    return None


def _clocks(facts: Mapping[str, Any]) -> bool | None:
    show = facts.get("jetson_clocks_show") or {}
    if show.get("returncode") == 0:
        pinned = parse_jetson_clocks_show(show.get("output") or "")
        if pinned is not None:
            return pinned
    if not (facts.get("nv_tegra_release") or facts.get("device_tree_model")):
        return None  # jetson_clocks is a Jetson notion; a desktop's governor says nothing here
    clocks = facts.get("clocks") or {}
    return clocks_pinned([tuple(c) for c in clocks.get("cpus", [])], [tuple(g) for g in clocks.get("gpus", [])])


def record_from_device_result(
    result: Mapping[str, Any],
    *,
    target: SSHTarget,
    model: str,
    precision: str,
    input_shape: tuple[int, int, int, int],
    warmup: int,
    runs: int,
    threads: int | None,
) -> LatencyRecord:
    """Build the record from the device script's JSON (see its module docstring for the layout)."""
    facts = result.get("facts") or {}
    backend = result.get("backend")
    batch, channels, height, width = input_shape
    notes: list[str] = []
    tensorrt_version = None
    if backend == "onnxruntime":
        times = [float(t) for t in result.get("times_ms") or []]
        runtime = result.get("runtime") or {}
        provider = result.get("provider", "CPUExecutionProvider")
        rt_backend = "onnxruntime"
        notes.append(
            f"ONNX Runtime {facts.get('onnxruntime')} {provider} on the device, {runtime.get('input_dtype')} random "
            f"input {batch}x{channels}x{height}x{width}, {warmup} warm-up + {runs} timed runs, each timed with "
            "time.perf_counter around session.run; "
            + (f"{threads} intra-op threads" if threads else "intra-op threads: ONNX Runtime default")
        )
    elif backend == "tensorrt":
        trt = result.get("trtexec") or {}
        summary = parse_trtexec_output(trt.get("output") or "")
        tensorrt_version = summary.tensorrt_version or facts.get("tensorrt_header")
        if not trt.get("times_json"):
            raise ProfilingError(
                f"{target}: trtexec wrote no --exportTimes trace, so there are no per-run times "
                f"(flags dropped for this trtexec: {trt.get('flags_dropped')})"
            )
        parsed = parse_trtexec_times(
            trt["times_json"],
            warmup_queries=summary.warmup_queries,
            timed_queries=summary.timed_queries,
            warmup_ms=float(warmup),
        )
        times = list(parsed.latency_ms)
        provider = f"trtexec {tensorrt_version}" if tensorrt_version else "trtexec"
        rt_backend = "tensorrt"
        flags = " ".join(a for a in trt.get("argv", [])[1:] if not a.startswith(("--onnx=", "--exportTimes=")))
        transfers = "zero with --noDataTransfers" if "--noDataTransfers" in flags else "included"
        notes.append(
            f"TensorRT trtexec ({flags}); latency = trtexec 'Latency' per query from --exportTimes "
            f"(H2D + GPU compute + D2H, transfers {transfers}), {parsed.dropped_warmup} warm-up queries "
            f"dropped, warm-up given in milliseconds (--warmUp={warmup})"
        )
        if summary.throughput_qps is not None:
            notes.append(f"trtexec reported {summary.throughput_qps:g} qps")
        if precision == "int8":
            notes.append("INT8 without calibration data: random scales, valid for speed only")
        if precision == "fp16":
            notes.append("--fp16 lets TensorRT keep layers in fp32 where that is faster")
        if trt.get("flags_dropped"):
            notes.append(f"flags not supported by this trtexec and left out: {', '.join(trt['flags_dropped'])}")
    else:
        raise ProfilingError(f"{target}: device result names no known backend ({backend!r})")

    if len(times) < runs:
        raise ProfilingError(f"{target}: asked for {runs} timed runs, the device returned {len(times)}")
    stats = summarize_times(times, batch=batch)
    power_mw, energy_mj, rail, power_note = _power(result, stats["median_ms"], batch)
    notes.append(power_note)
    pinned = _clocks(facts)
    mode = _power_mode(facts)
    if facts.get("nv_tegra_release") or facts.get("device_tree_model"):
        notes.append(
            f"power mode {mode or 'unknown (nvpmodel -q not readable)'}, clocks pinned: "
            f"{'unknown' if pinned is None else ('yes' if pinned else 'no')}"
        )
    environment = {
        "python": facts.get("python"),
        "python_executable": facts.get("python_executable"),
        "onnxruntime": facts.get("onnxruntime"),
        "numpy": facts.get("numpy"),
        "tensorrt": tensorrt_version or facts.get("tensorrt_header"),
        "trtexec": facts.get("trtexec"),
        "l4t": parse_l4t_release(facts.get("nv_tegra_release") or ""),
        "os": facts.get("os_release"),
        "uname": facts.get("uname"),
        "cpu": facts.get("cpu_model"),
        "cpu_count": facts.get("cpu_count"),
        "gpu_compute_capability": facts.get("compute_capability"),
    }
    if result.get("lock"):
        environment["device_lock"] = result["lock"]
    return LatencyRecord(
        model=model,
        target=target.url,
        kind="measured",
        backend=rt_backend,
        provider=provider,
        precision=precision,
        device=describe_remote_device(facts),
        batch=batch,
        channels=channels,
        height=height,
        width=width,
        threads=threads if rt_backend == "onnxruntime" else None,
        warmup=warmup,
        runs=len(times),
        host=str(facts.get("hostname") or target.host),
        environment=environment,
        power_mode=mode,
        clocks_pinned=pinned,
        power_mean_mw=power_mw,
        energy_per_frame_mj=energy_mj,
        power_rail=rail,
        notes="; ".join(notes),
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **stats,
    )


def _lock_params(options: SSHOptions, timeout_s: float | None, path: str | None) -> dict[str, Any]:
    # the wait must end before the command timeout stops the script
    timeout = float(timeout_s) if timeout_s is not None else max(1.0, options.command_timeout / 2)
    if timeout <= 0:
        raise ConfigError(f"lock timeout {timeout_s}: must be positive seconds")
    out: dict[str, Any] = {"lock_timeout_s": timeout}
    path = path or options.device_lock
    if path:
        out["lock_path"] = path
    return out


def time_kernels_remote(
    graphs: Sequence[Any],
    target: SSHTarget | str,
    options: SSHOptions | None = None,
    *,
    backend: str = "onnxruntime",
    precision: str = "fp32",
    threads: int | None = None,
    rounds: int = 5,
    runs: int = 5,
    warmup: int = 2,
    lock_timeout_s: float | None = None,
    lock_path: str | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Time a batch of kernel graphs (:class:`profiling._kernels.KernelGraph`) on the device in one run.

    One SSH connection and one device-lock hold for the whole batch. ONNX Runtime times every kernel
    in interleaved rounds (``rounds`` x ``runs``); trtexec builds and times each kernel's engine
    (``rounds * runs`` iterations, trtexec's per-query latency). Returns ``{key: {"wall": [ms, ...]}}``.
    """
    if backend not in ("onnxruntime", "trtexec"):
        raise ConfigError(f"--remote-backend {backend!r}: kernel tables need onnxruntime or trtexec")
    if precision not in PRECISIONS or (backend == "onnxruntime" and precision != "fp32"):
        raise ConfigError(f"--precision {precision!r} with {backend}: kernel tables take fp32, or fp16 with trtexec")
    target = SSHTarget.parse(target) if isinstance(target, str) else target
    options = options or SSHOptions()
    files = {f"k{i}.onnx": g.model for i, g in enumerate(graphs)}
    kernels = [
        {"key": g.key, "model": f"k{i}.onnx", "inputs": [[n, list(shape), dtype] for n, shape, dtype in g.inputs]}
        for i, g in enumerate(graphs)
    ]
    params = _base_params(
        options,
        backend=backend,
        precision=precision,
        threads=threads,
        kernels=kernels,
        rounds=int(rounds),
        runs=int(runs),
        warmup_iterations=int(warmup),
        warmup_ms=TRT_DEFAULT_WARMUP_MS,
        workspace_mib=256,
        **_lock_params(options, lock_timeout_s, lock_path),
    )
    with RemoteShell.connect(target, options) as shell:
        result = _run_device_script(shell, params, None, files)
    if not result.get("ok"):
        raise _remote_error(target, options, result.get("error") or {})
    out: dict[str, dict[str, list[float]]] = {}
    for item in result.get("kernels") or []:
        if item.get("backend") == "onnxruntime":
            times = [float(t) for t in item.get("times_ms") or []]
        else:
            trt = item.get("trtexec") or {}
            summary = parse_trtexec_output(trt.get("output") or "")
            if not trt.get("times_json"):
                raise ProfilingError(f"{target}: trtexec wrote no --exportTimes trace for kernel {item.get('key')}")
            times = list(
                parse_trtexec_times(
                    trt["times_json"],
                    warmup_queries=summary.warmup_queries,
                    timed_queries=summary.timed_queries,
                    warmup_ms=float(TRT_DEFAULT_WARMUP_MS),
                ).latency_ms
            )
        out[str(item.get("key"))] = {"wall": times}
    missing = [g.key for g in graphs if g.key not in out]
    if missing:
        raise RemoteProfilingError(f"{target}: the device returned no times for {len(missing)} kernel(s)")
    return out
