#!/usr/bin/env python3
"""rtseg-nas device-side profiler: times one ONNX model on this device and prints one JSON object.

Runs on the target (e.g. a Jetson Nano with JetPack 4.6: Python 3.6.9), so it uses the standard
library only (numpy and onnxruntime are imported only for the onnxruntime backend) and no syntax or
API newer than Python 3.6.

Usage:  python3 rtseg_device_profiler.py params.json

The parameters come as a JSON file (uploaded by SFTP) so that nothing from the host passes
through a shell. It works under any locale (JetPack's Python 3.6 under LANG=C reads and writes
ASCII by default): files and tool output are read as bytes and decoded as UTF-8, paths from the
parameters are handed to the OS as their UTF-8 bytes. With ``exit_on_hangup`` it watches stdin:
when the SSH connection drops, stdin ends, and the script stops its tools, removes ``workdir``
and exits, so no job runs on without a host to report to. The script measures; the host computes every statistic from the raw numbers
printed here. Output (stdout, one JSON object):

  protocol   1
  ok         true, or false with error = {"code": ..., "message": ...}
  facts      device description, versions, power mode and clock state (raw tool output)
  backend    "onnxruntime" | "tensorrt"
  times_ms   per-run wall times (onnxruntime: time.perf_counter around session.run)
  trtexec    {"argv", "returncode", "output", "times_json", "flags_dropped"} for the TensorRT backend
  power      {"tool", "interval_ms", "window": [t0, t1], "samples": [[t, line], ...], "error"}
  lock       {"path", "waited_s", "held": [t_acquired, t_released]}: the device lock held while timing
  kernels    with params "kernels": per-kernel results of a batch (see run_kernel_batch)

One device, many workers: every timing run (not a probe) holds an exclusive lock (fcntl.flock on
``lock_path``, /tmp/rtseg-device-profiler.lock by default) for its whole measurement, so several
search workers that share a device queue instead of timing on top of each other. A run that cannot
get the lock within ``lock_timeout_s`` fails with code "device-busy", naming the host and holder.
"""

import collections
import errno
import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time

PROTOCOL = 1
CHILDREN = []  # tool processes to stop when the connection drops
PATH_PARAMS = ("model", "times_file", "workdir", "trtexec_path", "tegrastats_path")
TRTEXEC_DEFAULT = "/usr/src/tensorrt/bin/trtexec"
LOCK_DEFAULT = "/tmp/rtseg-device-profiler.lock"
LOCK_TIMEOUT_DEFAULT = 600.0

# trtexec's output is streamed, never held whole (--verbose on a big model prints hundreds of MB;
# holding it took 1.2 GB for 512 MB of output): the first OUTPUT_HEAD_BYTES, the last
# OUTPUT_TAIL_BYTES, and in between only the lines the host parses (profiling/_parsers.py), up to
# OUTPUT_KEPT_BYTES. Lines are read at most OUTPUT_LINE_BYTES at a time (a line without newlines
# cannot grow without bound either).
OUTPUT_HEAD_BYTES = 64 * 1024
OUTPUT_TAIL_BYTES = 400 * 1024
OUTPUT_KEPT_BYTES = 1024 * 1024
OUTPUT_LINE_BYTES = 64 * 1024
PARSED_LINE = re.compile(
    r"&&&&|TensorRT version|Selected Device|Compute Capability|Average on \d+ runs|Warmup completed|"
    r"Timing trace has|[Tt]hroughput:|Latency|GPU Compute|Enqueue Time|percentile|(?:min|max|mean|median)[:=]"
)

# Compute capability by SoC (from /proc/device-tree/compatible), for the INT8 decision.
SOC_COMPUTE_CAPABILITY = {
    "nvidia,tegra210": (5, 3),  # Jetson Nano, TX1: Maxwell
    "nvidia,tegra186": (6, 2),  # Jetson TX2: Pascal GP10B
    "nvidia,tegra194": (7, 2),  # Xavier NX / AGX: Volta
    "nvidia,tegra234": (8, 7),  # Orin: Ampere
}
MODEL_COMPUTE_CAPABILITY = (
    ("jetson nano", (5, 3)),
    ("jetson tx1", (5, 3)),
    ("jetson tx2", (6, 2)),
    ("xavier", (7, 2)),
    ("orin", (8, 7)),
)

ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd41": "Cortex-A78",
    "0xd42": "Cortex-A78AE",
}
NVIDIA_PARTS = {"0x003": "Denver 2", "0x004": "Carmel"}


class DeviceError(Exception):
    """A condition the user can fix; ``code`` lets the host word the message."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def read_text(path, limit=65536):
    """At most ``limit`` bytes of a file as text, read in pieces: ``fh.read(limit)`` would allocate all
    of ``limit`` up front (64 MB for every trtexec times file, on a 4 GB Nano)."""
    try:
        with open(path, "rb") as fh:
            chunks, size = [], 0
            while size < limit:
                chunk = fh.read(min(1024 * 1024, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks).decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def run_tool(argv, timeout=20):
    """Run a short command; returns {"returncode", "output"} or None when it cannot start."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"returncode": None, "output": str(exc)}
    # bytes, decoded here: text mode would use the locale's codec (ASCII under LANG=C on 3.6)
    return {"returncode": proc.returncode, "output": proc.stdout.decode("utf-8", "replace")[-20000:]}


def native_path(text):
    """A path from the (UTF-8) parameters as the OS needs it under any locale.

    Under LANG=C, Python 3.6 encodes str paths as ASCII; the surrogate-escaped form of the UTF-8
    bytes is encoded back to exactly those bytes.
    """
    if not isinstance(text, str):
        return text
    return os.fsdecode(text.encode("utf-8"))


def clean_text(obj):
    """The inverse for the JSON answer: surrogate-escaped bytes back to real text, recursively."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return obj
        except UnicodeEncodeError:
            return os.fsencode(obj).decode("utf-8", "replace")
    if isinstance(obj, dict):
        return dict((clean_text(k), clean_text(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return [clean_text(v) for v in obj]
    return obj


def exit_on_hangup(workdir):
    """Stop everything when stdin ends: the SSH connection that started us has gone."""

    def watch():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        for proc in list(CHILDREN):
            try:
                proc.kill()
            except Exception:
                pass
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        os._exit(129)

    thread = threading.Thread(target=watch)
    thread.daemon = True
    thread.start()


def device_threads(params):
    """The intra-op thread count asked for, at most this device's CPUs (more only oversubscribe them)."""
    threads = int(params["threads"])
    cpus = os.cpu_count() or 1
    if not 1 <= threads <= cpus:
        raise DeviceError("threads", "--threads {}: this device has {} CPU(s); give 1 to {}".format(threads, cpus, cpus))
    return threads


class BoundedOutput(object):
    """A tool's output kept within fixed bounds (see OUTPUT_HEAD_BYTES): head, parsed lines, tail."""

    def __init__(self):
        self.head, self.head_bytes = [], 0
        self.tail, self.tail_bytes = collections.deque(), 0
        self.kept, self.kept_bytes = [], 0
        self.dropped_lines, self.dropped_bytes = 0, 0

    def add(self, line):
        if self.head_bytes < OUTPUT_HEAD_BYTES:
            self.head.append(line)
            self.head_bytes += len(line)
            return
        self.tail.append(line)
        self.tail_bytes += len(line)
        while self.tail_bytes > OUTPUT_TAIL_BYTES and len(self.tail) > 1:
            old = self.tail.popleft()
            self.tail_bytes -= len(old)
            if self.kept_bytes < OUTPUT_KEPT_BYTES and PARSED_LINE.search(old):
                self.kept.append(old)
                self.kept_bytes += len(old)
            else:
                self.dropped_lines += 1
                self.dropped_bytes += len(old)

    def last_lines(self, n):
        return (self.head + self.kept + list(self.tail))[-n:]

    def text(self):
        note = []
        if self.dropped_lines:
            note = [
                "[rtseg device profiler: {} lines ({} bytes) of this output left out; kept: its start, the lines "
                "with results, its end]\n".format(self.dropped_lines, self.dropped_bytes)
            ]
        return "".join(self.head + note + self.kept + list(self.tail))


def which(name, fallback=None):
    found = shutil.which(name)
    if found:
        return found
    if fallback and os.path.isfile(fallback) and os.access(fallback, os.X_OK):
        return fallback
    return None


def compute_capability(compatible, model):
    """(major, minor) of the Jetson GPU from device-tree strings, or None when unknown."""
    for entry in compatible or []:
        cc = SOC_COMPUTE_CAPABILITY.get(entry.strip().lower())
        if cc:
            return cc
    text = (model or "").lower()
    for needle, cc in MODEL_COMPUTE_CAPABILITY:
        if needle in text:
            return cc
    return None


def int8_refusal(cc, model):
    """Why TensorRT INT8 makes no sense on this GPU, or None when it may.

    Fast INT8 needs DP4A (compute capability 6.1) or INT8 tensor cores (7.x and later);
    Maxwell (5.x, the Nano) and the TX2's GP10B (6.2) have neither, so TensorRT reports no
    native INT8 and --int8 brings no gain there.
    """
    if cc is None:
        return None
    if cc < (6, 1) or cc == (6, 2):
        arch = "Maxwell" if cc[0] == 5 else "Pascal GP10B"
        return (
            "INT8 with TensorRT is not applicable on {dev} (GPU compute capability {a}.{b}, {arch}): "
            "it has no native INT8 (needs DP4A, compute capability 6.1, or INT8 tensor cores, 7.x+), "
            "so --int8 gives no speed-up. Benchmark fp32/fp16 with trtexec, and INT8 on the CPU with "
            "the onnxruntime backend and a quantized model."
        ).format(dev=model or "this device", a=cc[0], b=cc[1], arch=arch)
    return None


def cpu_model(cpuinfo):
    if not cpuinfo:
        return None
    for key in ("model name", "Model name", "Processor"):
        m = re.search(r"^" + key + r"\s*:\s*(.+)$", cpuinfo, re.M)
        if m and "ARMv" not in m.group(1):
            return m.group(1).strip()
    impl = re.findall(r"^CPU implementer\s*:\s*(\S+)", cpuinfo, re.M)
    parts = re.findall(r"^CPU part\s*:\s*(\S+)", cpuinfo, re.M)
    if parts:
        names = []
        for i, part in enumerate(parts):
            vendor = impl[i] if i < len(impl) else ""
            table = NVIDIA_PARTS if vendor == "0x4e" else ARM_PARTS
            names.append(table.get(part.lower(), "ARM part " + part))
        counts = []
        for name in sorted(set(names), key=names.index):
            counts.append("{}x {}".format(names.count(name), name))
        return ", ".join(counts)
    m = re.search(r"^Hardware\s*:\s*(.+)$", cpuinfo, re.M)
    return m.group(1).strip() if m else None


def tensorrt_header_version():
    for arch in ("aarch64-linux-gnu", "x86_64-linux-gnu", ""):
        path = os.path.join("/usr/include", arch, "NvInferVersion.h")
        text = read_text(path)
        if not text:
            continue
        parts = []
        for name in ("NV_TENSORRT_MAJOR", "NV_TENSORRT_MINOR", "NV_TENSORRT_PATCH"):
            m = re.search(r"#define\s+" + name + r"\s+(\d+)", text)
            if not m:
                break
            parts.append(m.group(1))
        if len(parts) == 3:
            return ".".join(parts)
    return None


def sysfs_int(path):
    text = read_text(path, 64)
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def clock_state():
    """(min, max) frequencies of online CPUs and of the GPU's devfreq node, read from sysfs."""
    cpus = []
    base = "/sys/devices/system/cpu"
    try:
        names = sorted(n for n in os.listdir(base) if re.match(r"cpu\d+$", n))
    except OSError:
        names = []
    for name in names:
        online = read_text(os.path.join(base, name, "online"), 8)
        if online is not None and online.strip() == "0":
            continue
        lo = sysfs_int(os.path.join(base, name, "cpufreq", "scaling_min_freq"))
        hi = sysfs_int(os.path.join(base, name, "cpufreq", "scaling_max_freq"))
        if lo is not None and hi is not None:
            cpus.append([lo, hi])
    gpus = []
    devfreq = "/sys/class/devfreq"
    try:
        nodes = sorted(os.listdir(devfreq))
    except OSError:
        nodes = []
    for node in nodes:
        if not re.search(r"gpu|gm20b|gp10b|gv11b|ga10b", node):
            continue
        lo = sysfs_int(os.path.join(devfreq, node, "min_freq"))
        hi = sysfs_int(os.path.join(devfreq, node, "max_freq"))
        if lo is not None and hi is not None:
            gpus.append([lo, hi])
    return {"cpus": cpus, "gpus": gpus}


def collect_facts(params):
    dt_model = read_text("/proc/device-tree/model")
    compatible = read_text("/proc/device-tree/compatible")
    uname = os.uname()
    facts = {
        "hostname": uname.nodename,
        "uname": " ".join([uname.sysname, uname.nodename, uname.release, uname.version, uname.machine]),
        "machine": uname.machine,
        "device_tree_model": dt_model.strip("\x00 \n") if dt_model else None,
        "device_tree_compatible": [c for c in compatible.split("\x00") if c] if compatible else [],
        "cpu_model": cpu_model(read_text("/proc/cpuinfo", 262144)),
        "cpu_count": os.cpu_count(),
        "nv_tegra_release": read_text("/etc/nv_tegra_release", 4096),
        "os_release": None,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "euid": os.geteuid(),
        "numpy": None,
        "onnxruntime": None,
        "onnxruntime_error": None,
        "tensorrt_header": tensorrt_header_version(),
        "trtexec": which("trtexec", TRTEXEC_DEFAULT) if not params.get("trtexec_path") else params["trtexec_path"],
        "tegrastats": None,
        "nvpmodel_query": None,
        "nvpmodel_status": read_text("/var/lib/nvpmodel/status", 4096),
        "nvpmodel_conf": None,
        "jetson_clocks_show": None,
        "clocks": clock_state(),
    }
    osr = read_text("/etc/os-release", 8192)
    if osr:
        m = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', osr, re.M)
        facts["os_release"] = m.group(1) if m else None
    cc = compute_capability(facts["device_tree_compatible"], facts["device_tree_model"])
    facts["compute_capability"] = "{}.{}".format(*cc) if cc else None
    try:
        import numpy

        facts["numpy"] = numpy.__version__
    except Exception as exc:  # any import failure means "not usable"
        facts["numpy"] = None
        facts["numpy_error"] = "{}: {}".format(type(exc).__name__, exc)
    try:
        import onnxruntime

        facts["onnxruntime"] = onnxruntime.__version__
    except Exception as exc:
        facts["onnxruntime_error"] = "{}: {}".format(type(exc).__name__, exc)
    facts["tegrastats"] = params.get("tegrastats_path") or which("tegrastats", "/usr/bin/tegrastats")
    if facts["nv_tegra_release"] or facts["device_tree_model"]:
        nvpmodel = which("nvpmodel", "/usr/sbin/nvpmodel")
        if nvpmodel:
            facts["nvpmodel_query"] = run_tool([nvpmodel, "-q"], timeout=15)
        conf = read_text("/etc/nvpmodel.conf", 262144)
        if conf:
            facts["nvpmodel_conf"] = "\n".join(ln for ln in conf.splitlines() if "POWER_MODEL" in ln)
        jc = which("jetson_clocks", "/usr/bin/jetson_clocks")
        if jc and os.geteuid() == 0:
            facts["jetson_clocks_show"] = run_tool([jc, "--show"], timeout=15)
    return facts


# ---------------------------------------------------------------------------------------------
# the device lock
# ---------------------------------------------------------------------------------------------


class DeviceLock(object):
    """An exclusive flock on one file in /tmp, held while this run times; released at exit.

    flock is released by the kernel when the process dies, so a killed run never leaves the
    device locked. The holder writes its pid, user and start time into the file, for the message
    a waiting run gives when it times out.
    """

    def __init__(self, path, timeout_s):
        self.path = path or LOCK_DEFAULT
        self.timeout_s = float(timeout_s)
        self.fh = None
        self.waited_s = 0.0
        self.acquired = None
        self.released = None

    def acquire(self):
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise DeviceError(
                "lock-failed", "cannot open the device lock {} on {}: {}".format(self.path, os.uname().nodename, exc)
            ) from None
        self.fh = os.fdopen(fd, "r+")
        start = time.time()
        while True:
            try:
                fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if time.time() - start >= self.timeout_s:
                holder = read_text(self.path, 512) or "unknown holder"
                self.fh.close()
                self.fh = None
                raise DeviceError(
                    "device-busy",
                    "the device {} is busy: another profiling run holds {} ({}) and did not finish within the "
                    "lock timeout of {:g} s; wait for it, or raise the lock timeout".format(
                        os.uname().nodename, self.path, holder.strip(), self.timeout_s
                    ),
                )
            time.sleep(0.05)
        self.acquired = time.time()
        self.waited_s = self.acquired - start
        try:
            self.fh.seek(0)
            self.fh.truncate()
            self.fh.write("pid {} user {} since {}".format(os.getpid(), os.geteuid(), time.strftime("%H:%M:%S")))
            self.fh.flush()
        except (IOError, OSError):
            pass  # the note is for humans; the lock itself is held

    def release(self):
        if self.fh is None:
            return
        self.released = time.time()
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        finally:
            self.fh.close()
            self.fh = None

    def report(self):
        return {"path": self.path, "waited_s": self.waited_s, "held": [self.acquired, self.released]}


# ---------------------------------------------------------------------------------------------
# power sampling
# ---------------------------------------------------------------------------------------------


class TegrastatsSampler(object):
    """Runs ``tegrastats --interval N`` and timestamps each line as it arrives.

    tegrastats writes to a pipe in blocks, which would smear the timestamps, so its output goes
    to a pseudo-terminal (line-buffered). The host keeps the lines inside the timed window.
    """

    def __init__(self, tool, interval_ms):
        self.tool = tool
        self.interval_ms = interval_ms
        self.samples = []
        self.error = None
        self.proc = None
        self.master = None
        self.thread = None

    def start(self):
        if not self.tool:
            self.error = "tegrastats not found"
            return
        import pty

        try:
            master, slave = pty.openpty()
            self.proc = subprocess.Popen(
                [self.tool, "--interval", str(int(self.interval_ms))],
                stdin=subprocess.DEVNULL,
                stdout=slave,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
            os.close(slave)
            CHILDREN.append(self.proc)
        except OSError as exc:
            self.error = "cannot start {}: {}".format(self.tool, exc)
            return
        self.master = master
        self.thread = threading.Thread(target=self._read)
        self.thread.daemon = True
        self.thread.start()
        # one interval so the first sample exists before the timed loop starts
        time.sleep(min(2.0, 1.5 * self.interval_ms / 1000.0))

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO once the child has gone
                break
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").strip()
                if text:
                    self.samples.append([time.time(), text])

    def stop(self):
        if self.proc is None:
            return
        early = self.proc.poll()
        try:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
        if self.thread is not None:
            self.thread.join(timeout=2)
        try:
            os.close(self.master)
        except OSError:
            pass
        if early is not None:
            # it died during the loop: its lines may be an error message, not readings
            last = self.samples[-1][1] if self.samples else ""
            self.error = "tegrastats exited early with code {} ({}; it usually needs root)".format(early, last[:200])

    def report(self, window):
        return {
            "tool": self.tool,
            "interval_ms": self.interval_ms,
            "window": window,
            "samples": self.samples,
            "error": self.error,
        }


# ---------------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------------

NUMPY_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
}


def run_onnxruntime(params, facts, sampler):
    if facts.get("onnxruntime") is None:
        raise DeviceError(
            "onnxruntime-missing",
            "onnxruntime cannot be imported by {} ({})".format(sys.executable, facts.get("onnxruntime_error")),
        )
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    if params.get("threads"):
        so.intra_op_num_threads = device_threads(params)
        so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    provider = "CPUExecutionProvider"
    try:
        # the model's bytes, not its path: ONNX Runtime encodes a str path as UTF-8, which a
        # surrogate-escaped path (non-ASCII under LANG=C) is not
        with open(params["model"], "rb") as fh:
            model_bytes = fh.read()
        sess = ort.InferenceSession(model_bytes, sess_options=so, providers=[provider])
    except Exception as exc:
        raise DeviceError(
            "onnxruntime-load", "onnxruntime {} cannot load the model: {}".format(ort.__version__, exc)
        ) from None
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise DeviceError("model-inputs", "the model has {} inputs; one image input is expected".format(len(inputs)))
    shape = [int(d) for d in params["input_shape"]]
    dtype = NUMPY_DTYPES.get(inputs[0].type)
    if dtype is None:
        raise DeviceError(
            "model-inputs", "input {!r} has type {}, not supported".format(inputs[0].name, inputs[0].type)
        )
    rng = np.random.RandomState(int(params.get("seed", 0)))
    data = rng.random_sample(shape).astype(dtype)
    feed = {inputs[0].name: data}
    try:
        for _ in range(int(params["warmup_iterations"])):
            sess.run(None, feed)
    except Exception as exc:
        raise DeviceError("onnxruntime-run", "onnxruntime failed on input shape {}: {}".format(shape, exc)) from None
    runs = int(params["runs"])
    times = []
    sampler.start()
    t_start = time.time()
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1000.0)
    t_end = time.time()
    sampler.stop()
    return {
        "backend": "onnxruntime",
        "provider": provider,
        "times_ms": times,
        "runtime": {
            "onnxruntime": ort.__version__,
            "input_name": inputs[0].name,
            "input_dtype": dtype,
            "threads": params.get("threads"),
            "warmup_iterations": int(params["warmup_iterations"]),
        },
        "power": sampler.report([t_start, t_end]),
    }


def trtexec_flags(help_text, params, precision):
    """trtexec arguments for this version; flags its ``--help`` does not list are dropped and reported."""
    help_text = help_text or ""
    dropped = []
    args = ["--onnx=" + params["model"]]
    mib = int(params.get("workspace_mib", 256))
    if "--memPoolSize" in help_text:
        args.append("--memPoolSize=workspace:{}".format(mib))  # TensorRT 8.5+ (--workspace went in 10)
    else:
        args.append("--workspace={}".format(mib))  # TensorRT 7.x - 8.4 (8.0.1 on JetPack 4.6)
    if precision == "fp16":
        args.append("--fp16")
    elif precision == "int8":
        args.append("--int8")
    name = params.get("input_name")
    if name and params.get("dynamic_input"):
        dims = "x".join(str(int(d)) for d in params["input_shape"])
        spec = "{}:{}".format(name, dims)
        args += ["--minShapes=" + spec, "--optShapes=" + spec, "--maxShapes=" + spec, "--shapes=" + spec]
    args += [
        "--warmUp={}".format(int(params["warmup_ms"])),
        "--iterations={}".format(int(params["runs"])),
        "--duration=0",
        "--avgRuns={}".format(min(int(params["runs"]), 10)),
    ]
    for flag in ("--useSpinWait", "--noDataTransfers"):
        if not help_text or flag in help_text:
            args.append(flag)
        else:
            dropped.append(flag)
    if not help_text or "--exportTimes" in help_text:
        args.append("--exportTimes=" + params["times_file"])
    else:
        dropped.append("--exportTimes")
    return args, dropped


def run_trtexec(params, facts, sampler, precision):
    tool = facts.get("trtexec")
    if not tool or not (os.path.isfile(tool) and os.access(tool, os.X_OK)):
        raise DeviceError(
            "trtexec-missing",
            "trtexec not found (looked for {} on PATH and at {})".format(
                params.get("trtexec_path") or "trtexec", TRTEXEC_DEFAULT
            ),
        )
    if precision == "int8":
        cc = compute_capability(facts.get("device_tree_compatible"), facts.get("device_tree_model"))
        reason = int8_refusal(cc, facts.get("device_tree_model"))
        if reason:
            raise DeviceError("int8-not-applicable", reason)
    helped = run_tool([tool, "--help"], timeout=60)
    help_text = helped["output"] if helped else ""
    args, dropped = trtexec_flags(help_text, params, precision)
    argv = [tool] + args
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    CHILDREN.append(proc)
    output = BoundedOutput()
    marks = {"start": None, "end": None}

    def reader():
        for raw in iter(lambda: proc.stdout.readline(OUTPUT_LINE_BYTES), b""):
            line = raw.decode("utf-8", "replace")
            now = time.time()
            output.add(line)
            # the engine build takes minutes on a Nano: power is sampled from here on only
            if marks["start"] is None and "Starting inference" in line:
                marks["start"] = now
                sampler.start()
            elif marks["start"] is not None and marks["end"] is None:
                if "Warmup completed" in line or "Trace averages" in line or "Host Latency" in line:
                    marks["end"] = now

    thread = threading.Thread(target=reader)
    thread.daemon = True
    thread.start()
    timeout = float(params.get("trtexec_timeout_s", 3600))
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        thread.join(timeout=5)
        sampler.stop()
        raise DeviceError("trtexec-timeout", "trtexec did not finish within {:.0f} s".format(timeout)) from None
    thread.join(timeout=10)
    end = marks["end"] or time.time()
    sampler.stop()
    times_json = read_text(params["times_file"], 64 * 1024 * 1024)
    if proc.returncode != 0:
        raise DeviceError(
            "trtexec-failed",
            "trtexec exited with code {}; last lines:\n{}".format(proc.returncode, "".join(output.last_lines(25))),
        )
    return {
        "backend": "tensorrt",
        "provider": "trtexec",
        "trtexec": {
            "path": tool,
            "argv": argv,
            "returncode": proc.returncode,
            "output": output.text(),
            "times_json": times_json,
            "flags_dropped": dropped,
        },
        "power": sampler.report([marks["start"], end] if marks["start"] else None),
    }


def run_kernel_batch(params, facts, backend, precision):
    """Time many small kernel graphs in one run (the latency table's batches).

    ``params["kernels"]``: [{"key", "model", "inputs": [[name, shape, dtype], ...]}]. ONNX Runtime:
    every session is made first, then ``rounds`` rounds each run every kernel ``runs`` times, so a
    load change hits all kernels alike. trtexec: one engine build and timing per kernel.
    """
    out = []
    if backend == "onnxruntime":
        if facts.get("onnxruntime") is None:
            raise DeviceError(
                "onnxruntime-missing", "onnxruntime cannot be imported ({})".format(facts.get("onnxruntime_error"))
            )
        import numpy as np
        import onnxruntime as ort

        so = ort.SessionOptions()
        if params.get("threads"):
            so.intra_op_num_threads = device_threads(params)
            so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        rng = np.random.RandomState(0)
        sessions = []
        for k in params["kernels"]:
            try:
                sess = ort.InferenceSession(k["model"], sess_options=so, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise DeviceError("onnxruntime-load", "kernel {}: {}".format(k["key"], exc)) from None
            feed = {}
            for name, shape, dtype in k["inputs"]:
                feed[name] = rng.standard_normal(shape).astype(dtype)
            for _ in range(int(params.get("warmup_iterations", 2))):
                sess.run(None, feed)
            sessions.append((k["key"], sess, feed))
        times = dict((key, []) for key, _, _ in sessions)
        for _ in range(int(params.get("rounds", 5))):
            for key, sess, feed in sessions:
                sess.run(None, feed)
                for _ in range(int(params.get("runs", 5))):
                    t0 = time.perf_counter()
                    sess.run(None, feed)
                    times[key].append((time.perf_counter() - t0) * 1000.0)
        for key, _, _ in sessions:
            out.append({"key": key, "backend": "onnxruntime", "times_ms": times[key]})
        return {"backend": "onnxruntime", "kernels": out, "runtime": {"onnxruntime": ort.__version__}}
    for k in params["kernels"]:
        sub = dict(params)
        sub["model"] = k["model"]
        sub["times_file"] = k["model"] + ".times.json"
        sub["dynamic_input"] = False
        sub["runs"] = int(params.get("rounds", 5)) * int(params.get("runs", 5))
        item = run_trtexec(sub, facts, TegrastatsSampler(None, 100), precision)
        item["key"] = k["key"]
        item.pop("power", None)
        item["trtexec"]["output"] = item["trtexec"]["output"][-60000:]
        out.append(item)
    return {"backend": "tensorrt", "kernels": out}


def choose_backend(requested, precision, facts):
    trt = facts.get("trtexec")
    has_trt = bool(trt) and os.path.isfile(trt) and os.access(trt, os.X_OK)
    has_ort = facts.get("onnxruntime") is not None
    if requested != "auto":
        return requested
    if precision == "fp16":
        if has_trt:
            return "trtexec"
        raise DeviceError("trtexec-missing", "fp16 needs trtexec, and trtexec was not found")
    if precision == "int8":
        return "onnxruntime" if has_ort else "trtexec"
    if has_trt:
        return "trtexec"
    if has_ort:
        return "onnxruntime"
    raise DeviceError(
        "no-backend",
        "neither trtexec (PATH, {}) nor onnxruntime ({}) is available".format(
            TRTEXEC_DEFAULT, facts.get("onnxruntime_error")
        ),
    )


def main(argv):
    # onnxruntime, numpy and trtexec may write to fd 1; keep it for the one JSON object
    out_fd = os.dup(1)
    os.dup2(2, 1)
    result = {"protocol": PROTOCOL, "ok": True}
    try:
        if len(argv) != 2:
            raise DeviceError("usage", "usage: rtseg_device_profiler.py params.json")
        with open(argv[1], "rb") as fh:
            params = json.loads(fh.read().decode("utf-8"))
        for key in PATH_PARAMS:
            if params.get(key):
                params[key] = native_path(params[key])
        if params.get("exit_on_hangup"):
            exit_on_hangup(params.get("workdir"))
        facts = collect_facts(params)
        result["facts"] = facts
        if not params.get("probe_only"):
            precision = params.get("precision", "fp32")
            backend = choose_backend(params.get("backend", "auto"), precision, facts)
            lock = DeviceLock(params.get("lock_path"), params.get("lock_timeout_s", LOCK_TIMEOUT_DEFAULT))
            lock.acquire()
            try:
                if params.get("kernels"):
                    result.update(run_kernel_batch(params, facts, backend, precision))
                else:
                    sampler = TegrastatsSampler(facts.get("tegrastats"), int(params.get("tegrastats_interval_ms", 100)))
                    if backend == "onnxruntime":
                        result.update(run_onnxruntime(params, facts, sampler))
                    elif backend == "trtexec":
                        result.update(run_trtexec(params, facts, sampler, precision))
                    else:
                        raise DeviceError("usage", "unknown backend {!r}".format(backend))
            finally:
                lock.release()
                result["lock"] = lock.report()
    except DeviceError as exc:
        result["ok"] = False
        result["error"] = {"code": exc.code, "message": str(exc)}
    except Exception as exc:  # report, never die silently: the host needs the reason
        import traceback

        result["ok"] = False
        result["error"] = {
            "code": "internal",
            "message": "{}: {}".format(type(exc).__name__, exc),
            "traceback": traceback.format_exc()[-4000:],
        }
    data = (json.dumps(clean_text(result)) + "\n").encode("utf-8")
    view = memoryview(data)
    while view:
        written = os.write(out_fd, view)
        view = view[written:]
    os.close(out_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
