"""Remote profiling through a real OpenSSH server on loopback (see conftest.py).

The "device" is this machine: the device-side script runs under this interpreter (which has
onnxruntime), reached over real SSH with key authentication and known_hosts checks. trtexec and
tegrastats exist only on a Jetson; where a test needs them, a small stand-in script prints
their real output formats (TensorRT 8.0 console + --exportTimes JSON, Nano tegrastats lines).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import platform
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from profiling._remote import DEVICE_SCRIPT, inspect_onnx, probe_remote, profile_remote, record_from_device_result
from profiling._ssh import RemoteShell, SSHOptions, SSHTarget
from rtseg_core import ConfigError, RemoteProfilingError

SHAPE = (1, 1, 32, 32)


def _echo(url: str, opts: SSHOptions) -> str:
    """Connect and run one command: the host-key and authentication checks without the device script."""
    with RemoteShell.connect(SSHTarget.parse(url), opts) as sh:
        return sh.run("echo connected").stdout.strip()


def _remote_dir(tmp_path: Path, name: str = "remote") -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def _device_module():
    spec = importlib.util.spec_from_file_location("rtseg_device_profiler", DEVICE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# targets and options
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "user", "host", "port", "url"),
    [
        ("ssh://jetson@nano.local", "jetson", "nano.local", 22, "ssh://jetson@nano.local:22"),
        ("ssh://root@192.168.1.20:2222", "root", "192.168.1.20", 2222, "ssh://root@192.168.1.20:2222"),
        ("ssh://me@[fe80::1]:22", "me", "fe80::1", 22, "ssh://me@[fe80::1]:22"),
        ("ssh://nano", None, "nano", 22, "ssh://nano:22"),  # an ssh_config alias: user from the config
    ],
)
def test_target_parse(text, user, host, port, url):
    target = SSHTarget.parse(text)
    assert (target.user, target.host, target.port, target.url) == (user, host, port, url)
    assert SSHTarget.parse(target.url) == target


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("jetson@nano", "not an ssh:// address"),
        ("ssh://jetson:secret@nano", "passwords are not accepted"),
        ("ssh://jetson@nano:99999", "99999"),
        ("ssh://jetson@nano:abc", "ssh://jetson@nano:abc"),
        ("ssh://jetson@nano/tmp", "unexpected path"),
        ("ssh://jet;son@nano", "user name"),
        ("ssh://jetson@na$(id)no", "not a host name"),
    ],
)
def test_target_parse_rejects(text, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        SSHTarget.parse(text)
    assert fragment in str(info.value)


def test_options_refuse_password_and_bad_timeouts():
    with pytest.raises(ConfigError, match="key"):
        SSHOptions(password="hunter2")
    with pytest.raises(ConfigError, match="connect_timeout"):
        SSHOptions(connect_timeout=0)
    for name in ("connect_timeout", "command_timeout", "stall_timeout"):
        for bad in (float("inf"), float("nan"), -1, True):
            with pytest.raises(ConfigError, match=name):
                SSHOptions(**{name: bad})
    with pytest.raises(
        ConfigError, match="SSHOptions.device_lock must be an absolute path on the device, got 'x.lock'"
    ):
        SSHOptions(device_lock="x.lock")


# ---------------------------------------------------------------------------------------------
# profiling through the real sshd
# ---------------------------------------------------------------------------------------------


def test_profile_onnxruntime_over_ssh(sshd, tiny_onnx, tmp_path):
    remote = _remote_dir(tmp_path)
    opts = sshd.options(tmp_path, remote_tmpdir=str(remote))
    rec = profile_remote(
        tiny_onnx, sshd.url, opts, backend="onnxruntime", input_shape=SHAPE, warmup=5, runs=40, threads=1
    )
    assert rec.kind == "measured" and rec.backend == "onnxruntime" and rec.provider == "CPUExecutionProvider"
    assert rec.target == f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"
    assert (rec.batch, rec.channels, rec.height, rec.width) == SHAPE
    assert (rec.runs, rec.warmup, rec.threads, rec.precision) == (40, 5, 1, "fp32")
    assert 0 < rec.min_ms <= rec.median_ms <= rec.p90_ms < 1000
    assert rec.iqr_ms >= 0 and rec.mean_ms >= rec.min_ms
    assert rec.fps == pytest.approx(1000.0 / rec.median_ms)
    assert rec.host == socket.gethostname()
    assert rec.environment["python"] == platform.python_version()
    assert rec.environment["onnxruntime"] == onnxruntime.__version__
    assert f"{os.cpu_count()} CPUs" in rec.device
    assert rec.power_mean_mw is None and "tegrastats not found" in rec.notes
    assert "1 intra-op threads" in rec.notes
    assert list(remote.iterdir()) == []  # the mktemp -d directory is gone
    # the record is a real Record: JSON round trip
    assert type(rec).from_dict(json.loads(rec.to_json())) == rec


def test_shell_metacharacters_in_names_are_not_executed(sshd, tiny_onnx, tmp_path):
    # file names cannot hold "/", so the injected commands cd to $HOME and touch a marker there
    name = f"pwned-{os.getpid()}-{tmp_path.name}"
    marker = Path.home() / name
    payload = f"$(cd;touch {name}) `cd;touch {name}`; cd;touch {name}"
    odd = tmp_path / f'it\'s a "model" {payload}'
    odd.mkdir()
    model = odd / f"m {payload}.onnx"
    model.write_bytes(tiny_onnx.read_bytes())
    remote = _remote_dir(tmp_path, f"remote 'dir' {payload}")
    py_dir = tmp_path / f"py {payload} 'q'"
    py_dir.mkdir()
    (py_dir / "python").symlink_to(sys.executable)
    opts = sshd.options(tmp_path, remote_tmpdir=str(remote), remote_python=str(py_dir / "python"))
    try:
        rec = profile_remote(
            model, sshd.url, opts, backend="onnxruntime", input_shape=SHAPE, warmup=1, runs=3, model_name=payload
        )
        assert not marker.exists()
    finally:
        marker.unlink(missing_ok=True)
    assert rec.runs == 3 and rec.model == payload
    assert rec.environment["python_executable"] == str(py_dir / "python")
    assert list(remote.iterdir()) == []


def test_missing_trtexec_is_reported_and_workdir_removed(sshd, tiny_onnx, tmp_path):
    remote = _remote_dir(tmp_path)
    opts = sshd.options(tmp_path, remote_tmpdir=str(remote))
    with pytest.raises(RemoteProfilingError) as info:
        profile_remote(tiny_onnx, sshd.url, opts, backend="trtexec", input_shape=SHAPE, runs=5)
    assert f"trtexec not found on host {sshd.user}@127.0.0.1:{sshd.port}" in str(info.value)
    assert "/usr/src/tensorrt/bin/trtexec" in str(info.value)
    assert list(remote.iterdir()) == []


def test_missing_python_on_device(sshd, tiny_onnx, tmp_path):
    remote = _remote_dir(tmp_path)
    opts = sshd.options(tmp_path, remote_tmpdir=str(remote), remote_python="/nonexistent/python3")
    with pytest.raises(RemoteProfilingError, match=r"python not found on host .*127\.0\.0\.1"):
        profile_remote(tiny_onnx, sshd.url, opts, input_shape=SHAPE, runs=5)
    assert list(remote.iterdir()) == []


def _python_without_onnxruntime() -> str | None:
    for candidate in ("/usr/bin/python3",):
        if Path(candidate).exists():
            probe = subprocess.run([candidate, "-c", "import onnxruntime"], capture_output=True)
            if probe.returncode != 0:
                return candidate
    return None


def test_missing_onnxruntime_on_device(sshd, tiny_onnx, tmp_path):
    python = _python_without_onnxruntime()
    if python is None:
        pytest.skip("no python3 without onnxruntime on this machine to play a bare device")
    remote = _remote_dir(tmp_path)
    opts = sshd.options(tmp_path, remote_tmpdir=str(remote), remote_python=python)
    with pytest.raises(RemoteProfilingError, match=r"ONNX Runtime not installed on host .*127\.0\.0\.1") as info:
        profile_remote(tiny_onnx, sshd.url, opts, backend="onnxruntime", input_shape=SHAPE, runs=5)
    assert python in str(info.value)
    assert list(remote.iterdir()) == []


def test_command_timeout_stops_the_device_and_cleans_up(sshd, tiny_onnx, tmp_path):
    remote = _remote_dir(tmp_path)
    opts = sshd.options(tmp_path, remote_tmpdir=str(remote), command_timeout=1)
    with pytest.raises(RemoteProfilingError, match=r"did not finish within 1 s"):
        profile_remote(tiny_onnx, sshd.url, opts, backend="onnxruntime", input_shape=SHAPE, warmup=0, runs=10**8)
    assert list(remote.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# host keys, authentication, reachability
# ---------------------------------------------------------------------------------------------


def test_unknown_host_key_is_refused(sshd, tmp_path):
    known = sshd.known_hosts(tmp_path, trusted=False)
    opts = sshd.options(tmp_path, known_hosts=str(known))
    with pytest.raises(RemoteProfilingError) as info:
        _echo(sshd.url, opts)
    message = str(info.value)
    assert "127.0.0.1" in message and "--accept-new-host-key" in message and "unknown host key" in message
    assert known.read_text(encoding="utf-8") == ""


def test_new_host_key_accepted_and_written(sshd, tmp_path):
    known = tmp_path / "ssh" / "known_hosts"  # folder does not exist yet
    opts = sshd.options(tmp_path, known_hosts=str(known), accept_new_host_key=True)
    facts = probe_remote(sshd.url, opts)
    assert facts["onnxruntime"] == onnxruntime.__version__
    lines = known.read_text(encoding="utf-8").splitlines()
    assert lines == [sshd.host_key_line]
    # now trusted without the flag
    assert _echo(sshd.url, sshd.options(tmp_path, known_hosts=str(known))) == "connected"


def test_mismatching_host_key_is_refused_even_with_accept(sshd, tmp_path):
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts_mismatch"
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n", encoding="utf-8")
    before = known.read_text()
    for accept in (False, True):
        opts = sshd.options(tmp_path, known_hosts=str(known), accept_new_host_key=accept)
        with pytest.raises(RemoteProfilingError, match=r"127\.0\.0\.1.*HOST KEY MISMATCH.*ssh-keygen -R"):
            _echo(sshd.url, opts)
    assert known.read_text() == before


def test_closed_port_is_a_clean_error(sshd, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the socket is
    opts = sshd.options(tmp_path)
    with pytest.raises(RemoteProfilingError, match=rf"127\.0\.0\.1:{port}: connection refused"):
        _echo(f"ssh://{sshd.user}@127.0.0.1:{port}", opts)


def test_silent_port_times_out_on_banner(sshd, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    try:
        opts = sshd.options(tmp_path, connect_timeout=1)
        with pytest.raises(RemoteProfilingError, match=rf"127\.0\.0\.1:{port}: no SSH banner within 1 s"):
            _echo(f"ssh://{sshd.user}@127.0.0.1:{port}", opts)
    finally:
        for conn in accepted:
            conn.close()
        server.close()


def test_wrong_client_key_is_refused(sshd, tmp_path):
    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    opts = sshd.options(tmp_path, key_filename=str(wrong))
    with pytest.raises(RemoteProfilingError, match=rf"authentication refused for {sshd.user}@127\.0\.0\.1"):
        _echo(sshd.url, opts)


def test_missing_key_file_is_a_config_error(sshd, tmp_path):
    opts = sshd.options(tmp_path, key_filename=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="nope: file not found"):
        _echo(sshd.url, opts)


# ---------------------------------------------------------------------------------------------
# trtexec and tegrastats stand-ins (Jetson-only tools), driven through the same SSH path
# ---------------------------------------------------------------------------------------------

TRTEXEC_STANDIN = '''\
#!{python}
"""Stand-in for TensorRT 8.0.1 trtexec: accepts only 8.0's flags, prints its log, writes --exportTimes."""
import json, sys, time

FLAGS = {{"--onnx", "--workspace", "--fp16", "--int8", "--minShapes", "--optShapes", "--maxShapes", "--shapes",
         "--warmUp", "--iterations", "--duration", "--avgRuns", "--useSpinWait", "--noDataTransfers",
         "--exportTimes", "--exportProfile", "--percentile"}}
args = sys.argv[1:]
if args == ["--help"]:
    print("=== Build Options ===")
    print("  --workspace=N               Set workspace size in megabytes (default = 16)")
    print("  --fp16                      Enable fp16 precision, in addition to fp32 (default = disabled)")
    print("=== Inference Options ===")
    print("  --iterations=N              Run at least N inference iterations (default = 10)")
    print("  --warmUp=N                  Run for N milliseconds to warmup before measuring performance (default = 200)")
    print("  --duration=N                Run performance measurements for at least N seconds wallclock time")
    print("  --useSpinWait               Actively synchronize on GPU events.")
    print("  --noDataTransfers           Disable DMA transfers to and from device (default = enabled).")
    print("=== Reporting Options ===")
    print("  --avgRuns=N                 Report performance measurements averaged over N consecutive iterations")
    print("  --exportTimes=<file>        Write the timing results in a json file (default = disabled)")
    sys.exit(0)
opts = {{}}
for a in args:
    name, _, value = a.partition("=")
    if name not in FLAGS:
        print("[E] Unknown option: " + a)
        sys.exit(1)
    opts[name] = value
json.dump(args, open({argv_file!r}, "w"))
n = int(opts["--iterations"])
warm = [80.0] * 15
timed = [20.0 + 0.25 * ((i * 7) % 13) for i in range(n)]
json.dump(timed, open({timed_file!r}, "w"))
print("&&&& RUNNING TensorRT.trtexec [TensorRT v8001] # trtexec " + " ".join(args))
print("[11/20/2023-10:00:00] [I] === Device Information ===")
print("[11/20/2023-10:00:00] [I] Selected Device: NVIDIA Tegra X1")
print("[11/20/2023-10:00:00] [I] Compute Capability: 5.3")
print("[11/20/2023-10:00:05] [I] Starting inference")
sys.stdout.flush()
time.sleep(0.6)
entries, t = [], 0.0
for i, lat in enumerate(warm + timed):
    t = i * 12.0 if i < len(warm) else max(t + lat, 200.0 + (i - len(warm)) * 25.0)
    entries.append({{"startEnqMs": t, "endEnqMs": t + 1.1, "startH2dMs": t, "endH2dMs": t,
                    "startComputeMs": t, "endComputeMs": t + lat, "startD2hMs": t + lat, "endD2hMs": t + lat,
                    "h2dMs": 0, "computeMs": lat, "d2hMs": 0, "latencyMs": lat, "endToEndMs": lat}})
with open(opts["--exportTimes"], "w") as fh:
    fh.write("[\\n" + "\\n, ".join(json.dumps(e) for e in entries) + "\\n]\\n")
srt = sorted(timed)
med = (srt[(n - 1) // 2] + srt[n // 2]) / 2
print("[11/20/2023-10:00:06] [I] Warmup completed 15 queries over 200 ms")
print("[11/20/2023-10:00:06] [I] Timing trace has %d queries over 0.6 s" % n)
print("[11/20/2023-10:00:06] [I] === Performance summary ===")
print("[11/20/2023-10:00:06] [I] Throughput: %g qps" % (1000.0 / med))
print("[11/20/2023-10:00:06] [I] Latency: min = %g ms, max = %g ms, mean = %g ms, median = %g ms, "
      "percentile(99%%) = %g ms" % (srt[0], srt[-1], sum(srt) / n, med, srt[-1]))
print("&&&& PASSED TensorRT.trtexec [TensorRT v8001] # trtexec")
'''

TEGRASTATS_STANDIN = '''\
#!{python}
"""Stand-in for the Nano's tegrastats: JetPack 4.6 line format, POM_5V_IN alternating 1700/1900 mW."""
import sys, time
interval = int(sys.argv[sys.argv.index("--interval") + 1])
i = 0
while True:
    p = 1700 if i % 2 == 0 else 1900
    sys.stdout.write("RAM 2160/3964MB (lfb 1x2MB) SWAP 0/1982MB (cached 0MB) "
                     "CPU [12%%@1479,3%%@1479,2%%@1479,1%%@1479] EMC_FREQ 0%% GR3D_FREQ 99%% "
                     "PLL@25.5C CPU@27C PMIC@100C GPU@26C AO@33.5C thermal@26.5C "
                     "POM_5V_IN %d/1628 POM_5V_GPU 600/550 POM_5V_CPU 366/406\\n" % p)
    sys.stdout.flush()
    i += 1
    time.sleep(interval / 1000.0)
'''


def _standin(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_trtexec_pipeline_with_standin_tools(sshd, tiny_onnx, tmp_path):
    argv_file, timed_file = tmp_path / "argv.json", tmp_path / "timed.json"
    trtexec = _standin(
        tmp_path / "trtexec",
        TRTEXEC_STANDIN.format(python=sys.executable, argv_file=str(argv_file), timed_file=str(timed_file)),
    )
    tegrastats = _standin(tmp_path / "tegrastats", TEGRASTATS_STANDIN.format(python=sys.executable))
    remote = _remote_dir(tmp_path)
    opts = sshd.options(
        tmp_path,
        remote_tmpdir=str(remote),
        trtexec_path=str(trtexec),
        tegrastats_path=str(tegrastats),
        tegrastats_interval_ms=20,
    )
    rec = profile_remote(tiny_onnx, sshd.url, opts, backend="auto", precision="fp16", input_shape=SHAPE, runs=30)

    args = json.loads(argv_file.read_text())
    assert "--fp16" in args and "--iterations=30" in args and "--duration=0" in args
    assert "--warmUp=200" in args and "--workspace=256" in args  # TensorRT 8.0 flags, not --memPoolSize
    assert "--useSpinWait" in args and "--noDataTransfers" in args
    assert any(a.startswith("--exportTimes=") for a in args)
    assert not any(a.startswith("--shapes") for a in args)  # the tiny model's input is static

    timed = json.loads(timed_file.read_text())
    assert rec.backend == "tensorrt" and rec.provider == "trtexec 8.0.1" and rec.precision == "fp16"
    assert rec.runs == 30 and rec.warmup == 200 and rec.threads is None
    assert rec.median_ms == pytest.approx(float(np.median(timed)))  # warm-up queries (80 ms) dropped
    assert rec.p90_ms == pytest.approx(float(np.percentile(timed, 90)))
    assert "15 warm-up queries dropped" in rec.notes and "--warmUp=200" in rec.notes

    assert rec.power_rail == "POM_5V_IN"
    assert 1700 <= rec.power_mean_mw <= 1900  # the other rails (600, 366) are not added
    assert rec.energy_per_frame_mj == pytest.approx(rec.power_mean_mw * rec.median_ms / 1000)
    assert "idle baseline not subtracted" in rec.notes
    assert list(remote.iterdir()) == []


def test_trtexec_flags_follow_the_installed_version():
    dev = _device_module()
    params = {
        "model": "/w/model.onnx",
        "times_file": "/w/t.json",
        "warmup_ms": 200,
        "runs": 50,
        "input_name": "image",
        "dynamic_input": True,
        "input_shape": [1, 1, 256, 256],
    }
    help_80 = "--workspace=N  Set workspace size in megabytes\n--useSpinWait\n--noDataTransfers\n--exportTimes=<file>"
    args, dropped = dev.trtexec_flags(help_80, params, "fp16")
    assert "--workspace=256" in args and "--fp16" in args and dropped == []
    assert "--shapes=image:1x1x256x256" in args and "--minShapes=image:1x1x256x256" in args
    help_10 = "--memPoolSize=poolspec  Specify the size constraints\n--useSpinWait\n--noDataTransfers\n--exportTimes"
    args, _ = dev.trtexec_flags(help_10, params, "fp32")
    assert "--memPoolSize=workspace:256" in args and not any(a.startswith("--workspace") for a in args)
    help_7 = "--workspace=N\n--useSpinWait\n--exportTimes=<file>"  # TensorRT 7.1: no --noDataTransfers
    args, dropped = dev.trtexec_flags(help_7, params, "fp32")
    assert dropped == ["--noDataTransfers"] and "--noDataTransfers" not in args


# ---------------------------------------------------------------------------------------------
# the device-side script: Python 3.6, INT8 policy
# ---------------------------------------------------------------------------------------------


def test_device_script_is_python36_stdlib():
    src = DEVICE_SCRIPT.read_text(encoding="utf-8")
    tree = ast.parse(src, feature_version=(3, 6))  # walrus, positional-only params etc. fail here
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
            assert not (node.module == "__future__" and any(a.name == "annotations" for a in node.names))
        elif isinstance(node, ast.keyword):
            assert node.arg not in ("capture_output", "text"), "subprocess keywords of Python 3.7+"
        elif isinstance(node, ast.JoinedStr):
            for value in node.values:  # f"{x=}" (3.8) leaves a literal ending in "=" before the field
                assert not (isinstance(value, ast.Constant) and str(value.value).endswith("="))
        elif isinstance(node, ast.Attribute):
            assert node.attr not in ("removeprefix", "removesuffix", "isascii"), node.attr
    allowed_third_party = {"numpy", "onnxruntime"}
    stdlib = set(sys.stdlib_module_names)
    assert "dataclasses" not in imported
    assert imported <= stdlib | allowed_third_party, imported - stdlib - allowed_third_party


@pytest.mark.parametrize(
    ("compatible", "model", "cc", "refused"),
    [
        (
            ["nvidia,p3449-0000-b00+p3448-0002-b00", "nvidia,jetson-nano", "nvidia,tegra210"],
            "NVIDIA Jetson Nano Developer Kit",
            (5, 3),
            True,
        ),
        ([], "NVIDIA Jetson Nano Developer Kit", (5, 3), True),
        (["nvidia,tegra186"], "quill", (6, 2), True),
        (["nvidia,p3509-0000+p3668-0001", "nvidia,tegra194"], "NVIDIA Jetson Xavier NX Developer Kit", (7, 2), False),
        (["nvidia,tegra234"], "NVIDIA Jetson Orin Nano Developer Kit", (8, 7), False),
        ([], None, None, False),  # not a Jetson: left to trtexec
    ],
)
def test_int8_policy_by_compute_capability(compatible, model, cc, refused):
    dev = _device_module()
    assert dev.compute_capability(compatible, model) == cc
    reason = dev.int8_refusal(cc, model)
    assert (reason is not None) == refused
    if refused:
        assert "not applicable" in reason and "{}.{}".format(*cc) in reason and "onnxruntime" in reason


def test_arm_cpu_names_from_cpuinfo():
    dev = _device_module()
    nano = "".join(
        f"processor\t: {i}\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nCPU implementer\t: 0x41\nCPU part\t: 0xd07\n\n"
        for i in range(4)
    )
    assert dev.cpu_model(nano) == "4x Cortex-A57"
    assert dev.cpu_model("model name\t: Intel(R) Core(TM) i7\n") == "Intel(R) Core(TM) i7"


# ---------------------------------------------------------------------------------------------
# arguments refused before any connection; the record built from a Jetson's answer
# ---------------------------------------------------------------------------------------------

NOWHERE = "ssh://nobody@192.0.2.1:22"  # TEST-NET-1: these calls must fail before connecting


def test_arguments_checked_before_connecting(tiny_onnx, tmp_path):
    with pytest.raises(ConfigError, match="fp16 with --remote-backend onnxruntime"):
        profile_remote(tiny_onnx, NOWHERE, backend="onnxruntime", precision="fp16", input_shape=SHAPE)
    with pytest.raises(ConfigError, match="needs a quantized model"):
        profile_remote(tiny_onnx, NOWHERE, backend="onnxruntime", precision="int8", input_shape=SHAPE)
    with pytest.raises(ConfigError, match=r"fixed shape \(1, 1, 32, 32\)"):
        profile_remote(tiny_onnx, NOWHERE, input_shape=(1, 1, 64, 64))
    with pytest.raises(ConfigError, match="--remote-backend 'tensorrt'"):
        profile_remote(tiny_onnx, NOWHERE, backend="tensorrt", input_shape=SHAPE)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="bad.onnx: not a readable ONNX model"):
        profile_remote(bad, NOWHERE, input_shape=SHAPE)
    assert inspect_onnx(tiny_onnx).name == "image"


def test_record_from_a_jetson_nano_answer():
    """The host side of a Nano run: facts and tool output as JetPack 4.6 prints them."""
    t0 = 1_700_000_000.0
    times = [30.0 + 0.1 * (i % 9) for i in range(50)]
    samples = [[t0 - 0.05, "RAM 1/2MB POM_5V_IN 1200/1200 POM_5V_GPU 0/0 POM_5V_CPU 300/300"]]  # idle, before
    samples += [
        [t0 + 0.1 * k, f"RAM 1/2MB POM_5V_IN {4000 + 100 * (k % 2)}/3000 POM_5V_GPU 1500/1200"] for k in range(10)
    ]
    result = {
        "protocol": 1,
        "ok": True,
        "backend": "onnxruntime",
        "provider": "CPUExecutionProvider",
        "times_ms": times,
        "runtime": {"input_dtype": "float32"},
        "power": {"tool": "/usr/bin/tegrastats", "interval_ms": 100, "window": [t0, t0 + 0.95], "samples": samples},
        "facts": {
            "hostname": "nano",
            "device_tree_model": "NVIDIA Jetson Nano Developer Kit",
            "nv_tegra_release": "# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t210ref, EABI: aarch64, "
            "DATE: Mon Jul 26 19:20:30 UTC 2021\n",
            "cpu_model": "4x Cortex-A57",
            "cpu_count": 4,
            "compute_capability": "5.3",
            "python": "3.6.9",
            "onnxruntime": "1.10.0",
            "tensorrt_header": "8.0.1",
            "nvpmodel_query": {"returncode": 0, "output": "NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n"},
            "clocks": {"cpus": [[1479000, 1479000]] * 4, "gpus": [[921600000, 921600000]]},
        },
    }
    rec = record_from_device_result(
        result,
        target=SSHTarget.parse("ssh://jetson@nano.local"),
        model="paper",
        precision="fp32",
        input_shape=(1, 1, 256, 256),
        warmup=20,
        runs=50,
        threads=4,
    )
    assert (
        rec.device
        == "NVIDIA Jetson Nano Developer Kit (L4T R32.6.1; 4x Cortex-A57, 4 CPUs; GPU compute capability 5.3)"
    )
    assert rec.power_mode == "MAXN (nvpmodel mode 0)" and rec.clocks_pinned is True
    assert rec.power_rail == "POM_5V_IN"
    assert rec.power_mean_mw == pytest.approx(4050.0)  # the idle sample before the loop is outside the window
    assert rec.energy_per_frame_mj == pytest.approx(4050.0 * float(np.median(times)) / 1000)
    assert rec.environment["l4t"] == "R32.6.1" and rec.environment["tensorrt"] == "8.0.1"
    assert rec.target == "ssh://jetson@nano.local:22" and rec.host == "nano"
    assert "power mode MAXN (nvpmodel mode 0), clocks pinned: yes" in rec.notes
    # unpinned: scaling_min_freq below the max on one CPU
    result["facts"]["clocks"]["cpus"] = [[102000, 1479000]] + [[1479000, 1479000]] * 3
    rec = record_from_device_result(
        result,
        target=SSHTarget.parse("ssh://jetson@nano.local"),
        model="paper",
        precision="fp32",
        input_shape=(1, 1, 256, 256),
        warmup=20,
        runs=50,
        threads=4,
    )
    assert rec.clocks_pinned is False


def test_device_script_prints_json_even_for_bad_params(tmp_path):
    params = tmp_path / "params.json"
    params.write_text(
        json.dumps(
            {
                "backend": "onnxruntime",
                "model": str(tmp_path / "missing.onnx"),
                "input_shape": [1, 1, 8, 8],
                "warmup_iterations": 0,
                "runs": 1,
            }
        )
    )
    out = subprocess.run([sys.executable, str(DEVICE_SCRIPT), str(params)], capture_output=True, text=True, timeout=60)
    result = json.loads(out.stdout)
    assert out.returncode == 0 and result["ok"] is False
    assert result["error"]["code"] == "onnxruntime-load" and "missing.onnx" in result["error"]["message"]
    assert out.stdout.count("\n") == 1  # exactly one JSON line on stdout


def test_known_hosts_with_markers_hashes_and_unknown_types(sshd, tmp_path):
    """A real-world known_hosts: a @cert-authority line, an unreadable key type, a hashed entry for this host."""
    import base64
    import hashlib
    import hmac

    kind, blob = sshd.host_key_line.split()[1:3]
    salt = b"0123456789abcdefghij"
    name = f"[127.0.0.1]:{sshd.port}".encode()
    digest = hmac.new(salt, name, hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    known = tmp_path / "known_hosts_real"
    known.write_text(
        f"@cert-authority *.example.com {kind} {blob}\n"
        "other.example.com sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIA==\n"
        f"# comment\n\n{hashed} {kind} {blob}\n",
        encoding="utf-8",
    )
    assert _echo(sshd.url, sshd.options(tmp_path, known_hosts=str(known))) == "connected"
    known.write_text(known.read_text() + f"@revoked * {kind} {blob}\n", encoding="utf-8")
    with pytest.raises(RemoteProfilingError, match="@revoked"):
        _echo(sshd.url, sshd.options(tmp_path, known_hosts=str(known)))


TRTEXEC_VERBOSE = '''\
#!{python}
"""Stand-in for a trtexec --verbose run: 30 MB of log lines and one 4 MB line between its header and summary."""
import json, sys
args = sys.argv[1:]
if args == ["--help"]:
    print("--workspace=N\\n--useSpinWait\\n--noDataTransfers\\n--exportTimes=<file>")
    sys.exit(0)
opts = dict(a.partition("=")[::2] for a in args)
out = sys.stdout
out.write("&&&& RUNNING TensorRT.trtexec [TensorRT v8001] # trtexec\\n")
out.write("[11/20/2023-10:00:00] [I] Selected Device: NVIDIA Tegra X1\\n")
noise = "[11/20/2023-10:00:01] [V] [TRT] Tactic: 0x%016x Time: 0.123456 (layer /enc1/conv/Conv + Relu fused)\\n"
for i in range(300000):
    out.write(noise % i)
    if i == 150000:
        out.write("[11/20/2023-10:00:05] [I] Average on 10 runs - GPU latency: 21.5 ms - Host latency: 21.7 ms\\n")
out.write("x" * 4000000 + "\\n")
out.write("[11/20/2023-10:00:06] [I] Latency: min = 20 ms, max = 23 ms, mean = 21 ms, median = 21 ms, "
          "percentile(99%) = 23 ms\\n")
out.write("&&&& PASSED TensorRT.trtexec [TensorRT v8001] # trtexec\\n")
json.dump([{{"latencyMs": 21.0, "computeMs": 21.0}}], open(opts["--exportTimes"], "w"))
'''


def test_trtexec_output_is_streamed_within_bounds_keeping_what_is_parsed(tmp_path):
    """512 MB of trtexec output took 1.2 GB on the device; the script now holds a bounded head, tail and results."""
    import tracemalloc

    from profiling._parsers import parse_trtexec_output

    dev = _device_module()
    trtexec = _standin(tmp_path / "trtexec", TRTEXEC_VERBOSE.format(python=sys.executable))
    params = {"model": str(tmp_path / "m.onnx"), "times_file": str(tmp_path / "t.json"), "warmup_ms": 10, "runs": 10}
    tracemalloc.start()
    try:
        result = dev.run_trtexec(params, {"trtexec": str(trtexec)}, dev.TegrastatsSampler(None, 100), "fp32")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    output = result["trtexec"]["output"]
    assert len(output) < 2_000_000 and peak < 8_000_000, (len(output), peak)  # of 34 MB printed
    assert "lines (" in output and "of this output left out" in output
    summary = parse_trtexec_output(output)
    assert summary.tensorrt_version == "8.0.1" and summary.passed and summary.device_name == "NVIDIA Tegra X1"
    assert summary.latency.median == 21.0 and [a.gpu_ms for a in summary.averages] == [21.5]
