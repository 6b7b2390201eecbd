"""The SSH client under faults, against the real sshd on loopback (see conftest.py).

A small TCP relay sits between the client and sshd where a test needs to make the "device" go
silent (it stops relaying, as a hung device or a dead link does) or drop the connection (it
resets both sockets). Kills are real signals to real processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest

from profiling._remote import DEVICE_SCRIPT, probe_remote, profile_remote
from profiling._ssh import RemoteShell, SSHOptions, SSHTarget
from rtseg_core import RemoteProfilingError
from rtseg_nas.cli import main

SHAPE = (1, 1, 32, 32)


class Relay:
    """127.0.0.1:port -> sshd, relaying until ``freeze`` (then silent: nothing read, nothing sent) or ``drop``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.frozen = threading.Event()
        self.freeze_after_up: int | None = None  # client->server bytes after which to go silent
        self.up = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        while not self.frozen.is_set():
            try:
                data = src.recv(65536)
                if not data:
                    break
                if up:
                    self.up += len(data)
                    if self.freeze_after_up is not None and self.up > self.freeze_after_up:
                        self.frozen.set()  # this chunk never arrives either
                        break
                if not self.frozen.is_set():
                    dst.sendall(data)
            except OSError:
                break
        # silent, not closed: the client's writes fill the TCP window and then block, as with a hung device

    def drop(self) -> None:
        """Reset every connection, as a cable pulled out or a rebooted router does."""
        for s in self.sockets:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)  # wakes the relay thread blocked in recv(); close() alone would not
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.drop()
        self.server.close()


@pytest.fixture
def relay(sshd):
    r = Relay(sshd.port)
    yield r
    r.close()


def _via(relay: Relay, sshd) -> SSHTarget:
    return SSHTarget.parse(f"ssh://{sshd.user}@127.0.0.1:{relay.port}")


def _trusting(sshd, relay: Relay, tmp_path: Path, **overrides) -> SSHOptions:
    known = tmp_path / "known_hosts_relay"
    blob = sshd.host_key_line.split(maxsplit=1)[1]
    known.write_text(f"[127.0.0.1]:{relay.port} {blob}\n", encoding="utf-8")
    return sshd.options(tmp_path, known_hosts=str(known), **overrides)


def _in_thread(fn):
    """Run ``fn`` in a thread; return (thread, box) where box holds its result or exception."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and int(entry.name) != os.getpid():
                pids.append(int(entry.name))
    return pids


def _wait_for(predicate, seconds: float = 30.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ---------------------------------------------------------------------------------------------
# every network step has a deadline: the relay goes silent at each step in turn
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["connect", "upload", "command"])
def test_a_device_that_stops_answering_never_hangs_the_client(step, sshd, relay, tmp_path):
    opts = _trusting(sshd, relay, tmp_path, connect_timeout=1, stall_timeout=1.5, command_timeout=2)
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(8 << 20))

    def scenario():
        if step == "connect":
            relay.frozen.set()
        with RemoteShell.connect(_via(relay, sshd), opts) as sh:
            if step == "upload":
                relay.freeze_after_up = relay.up + (1 << 20)
                sh.put_file(big, str(tmp_path / "uploaded.bin"))
            if step == "command":
                relay.frozen.set()
                sh.run("echo never seen")

    thread, box = _in_thread(scenario)
    thread.join(timeout=60)  # a generous bound: the point is that it ends at all
    assert not thread.is_alive(), f"the client hung at the {step} step"
    error = box.get("error")
    assert isinstance(error, RemoteProfilingError), repr(error)
    expected = {
        "connect": r"no SSH banner within 1 s|no answer within",
        "upload": r"stopped answering: no progress for 1\.5 s during the upload of",
        "command": r"stopped answering: no progress for 1 s during the start of a remote command|did not finish",
    }[step]
    assert __import__("re").search(expected, str(error)), str(error)


# ---------------------------------------------------------------------------------------------
# output read to the end before the exit status
# ---------------------------------------------------------------------------------------------


def test_run_returns_all_output_every_time(sshd, tmp_path, monkeypatch):
    """The output ends just before the exit status arrives; a reader that stops at the status loses it.

    The reader is slowed as on a loaded machine (3 ms after each stderr check, a real channel
    otherwise) and three threads share the connection: the reader that broke at the exit status
    lost output in 19 of these 60 commands; every command must come back whole.
    """
    ready = paramiko.Channel.recv_stderr_ready

    def slow_reader(chan):
        answer = ready(chan)
        time.sleep(0.003)
        return answer

    monkeypatch.setattr(paramiko.Channel, "recv_stderr_ready", slow_reader)
    command = "head -c 50000 /dev/zero | tr '\\0' x; echo END; echo err-end >&2; exit 3"
    results: list = []
    with RemoteShell.connect(SSHTarget.parse(sshd.url), sshd.options(tmp_path)) as sh:

        def loop():
            for _ in range(20):
                res = sh.run(command)
                # the login shell may print its own noise first (pyenv's rehash when another process
                # holds its lock): what must arrive whole is the command's last line on each stream
                results.append((res.returncode, len(res.stdout), res.stdout[-4:], res.stderr.endswith("err-end\n")))

        threads = [threading.Thread(target=loop) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    assert len(results) == 60
    assert set(results) == {(3, 50004, "END\n", True)}


# ---------------------------------------------------------------------------------------------
# a dropped connection and a killed job: said so, and nothing left running or behind
# ---------------------------------------------------------------------------------------------


def test_dropped_connection_is_reported_and_the_device_job_dies_with_it(sshd, relay, tiny_onnx, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    opts = _trusting(sshd, relay, tmp_path, remote_tmpdir=str(remote), command_timeout=120)
    thread, box = _in_thread(
        lambda: profile_remote(tiny_onnx, _via(relay, sshd), opts, backend="onnxruntime", input_shape=SHAPE, runs=10**8)
    )
    script = str(remote) + "/rtseg-profile."
    started = lambda: [p for p in _processes_mentioning(script) if b"rtseg_device_profiler.py" in _cmd(p)]  # noqa: E731
    assert _wait_for(started), "the device job never started"
    relay.drop()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert isinstance(box.get("error"), RemoteProfilingError) and "connection dropped" in str(box["error"])
    assert _wait_for(lambda: not _processes_mentioning(str(remote)), 20), [
        (p, _cmd(p), Path(f"/proc/{p}/status").read_text().splitlines()[:8]) for p in _processes_mentioning(str(remote))
    ]
    assert _wait_for(lambda: not list(remote.iterdir())), list(remote.iterdir())

    # A work directory whose connection is gone (its job could not clean up) goes on the next connection;
    # one whose connection is alive stays.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, live = remote / "rtseg-profile.stale001", remote / "rtseg-profile.live0001"
    for folder, pid in ((stale, dead.pid), (live, os.getpid())):
        folder.mkdir()
        (folder / ".owner").write_text(f"{pid}\n")
    probe_remote(sshd.url, sshd.options(tmp_path, remote_tmpdir=str(remote)))
    assert sorted(p.name for p in remote.iterdir()) == [live.name]


def test_a_killed_device_job_is_reported_as_killed(sshd, tiny_onnx, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    opts = sshd.options(tmp_path, remote_tmpdir=str(remote), command_timeout=120)
    thread, box = _in_thread(
        lambda: profile_remote(tiny_onnx, sshd.url, opts, backend="onnxruntime", input_shape=SHAPE, runs=10**8)
    )
    script = str(remote) + "/rtseg-profile."
    assert _wait_for(lambda: [p for p in _processes_mentioning(script) if b"rtseg_device_profiler.py" in _cmd(p)])
    time.sleep(0.5)  # past the interpreter's start-up
    for pid in _processes_mentioning(script):
        if b"rtseg_device_profiler.py" in _cmd(pid) and not _cmd(pid).startswith(b"timeout"):
            os.kill(pid, signal.SIGKILL)
    thread.join(timeout=60)
    assert isinstance(box.get("error"), RemoteProfilingError) and "was killed" in str(box["error"]), box
    assert list(remote.iterdir()) == []


def _cmd(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# ---------------------------------------------------------------------------------------------
# host keys: revoked never written nor authenticated to; a symlinked known_hosts stays a link
# ---------------------------------------------------------------------------------------------


def test_host_key_trust_is_decided_before_authenticating_and_written_through_links(sshd, tmp_path):
    kind, blob = sshd.host_key_line.split()[1:3]
    accepted = sshd.log.read_text(errors="replace").count("Accepted publickey")
    revoked_only = tmp_path / "known_revoked"
    revoked_only.write_text(f"@revoked * {kind} {blob}\n")
    also_listed = tmp_path / "known_both"
    also_listed.write_text(f"{sshd.host_key_line}\n@revoked * {kind} {blob}\n")
    for known in (revoked_only, also_listed):
        before = known.read_bytes()
        opts = sshd.options(tmp_path, known_hosts=str(known), accept_new_host_key=True)
        with pytest.raises(RemoteProfilingError, match="@revoked"):
            RemoteShell.connect(SSHTarget.parse(sshd.url), opts)
        assert known.read_bytes() == before
    time.sleep(0.2)  # let sshd flush its log
    assert sshd.log.read_text(errors="replace").count("Accepted publickey") == accepted  # never authenticated

    real = tmp_path / "dotfiles" / "known_hosts"
    real.parent.mkdir()
    real.write_text("# managed by my dotfiles\n")
    real.chmod(0o644)
    link = tmp_path / "known_hosts_link"
    link.symlink_to(real)
    opts = sshd.options(tmp_path, known_hosts=str(link), accept_new_host_key=True)
    with RemoteShell.connect(SSHTarget.parse(sshd.url), opts) as sh:
        assert sh.run("echo ok").stdout == "ok\n"
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().splitlines() == ["# managed by my dotfiles", sshd.host_key_line]
    assert real.stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------------------------------------
# the device script under the C locale (JetPack's Python 3.6 without LANG): non-ASCII everywhere
# ---------------------------------------------------------------------------------------------

TRTEXEC_UTF8 = """#!{python}
import sys
args = sys.argv[1:]
if args == ["--help"]:
    sys.exit(0)
out = dict(a.split("=", 1) for a in args if "=" in a)
with open(out["--exportTimes"], "w") as fh:
    fh.write("[]")
sys.stdout.buffer.write("[I] Modèle chargé ✓\\n[I] Starting inference\\n[I] Débit: 50 qps\\n".encode("utf-8"))
"""


def test_device_script_works_under_the_c_locale_with_non_ascii_paths_and_output(tiny_onnx, tmp_path):
    folder = tmp_path / "modèles-é"
    folder.mkdir()
    model = folder / "réseau.onnx"
    model.write_bytes(tiny_onnx.read_bytes())
    trtexec = folder / "trtexec-ü"
    trtexec.write_text(TRTEXEC_UTF8.format(python=sys.executable), encoding="utf-8")
    trtexec.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C",
        "LC_ALL": "C",
        "PYTHONUTF8": "0",  # what Python 3.6 does under LANG=C: ASCII for files, paths and pipes
        "PYTHONCOERCECLOCALE": "0",
    }
    base = {"input_shape": list(SHAPE), "warmup_iterations": 1, "runs": 3, "warmup_ms": 10, "model": str(model)}
    for backend, extra in (("onnxruntime", {}), ("trtexec", {"trtexec_path": str(trtexec)})):
        params = folder / f"paramètres-{backend}.json"
        times = folder / f"temps-{backend}.json"
        params.write_text(json.dumps({**base, **extra, "backend": backend, "times_file": str(times)}), "utf-8")
        out = subprocess.run(
            [sys.executable, str(DEVICE_SCRIPT), str(params)], capture_output=True, env=env, timeout=120
        )
        result = json.loads(out.stdout.decode("utf-8"))
        assert out.returncode == 0 and result["ok"], (backend, result.get("error"), out.stderr[-2000:])
        if backend == "onnxruntime":
            assert len(result["times_ms"]) == 3
        else:
            assert "Modèle chargé ✓" in result["trtexec"]["output"] and result["trtexec"]["path"] == str(trtexec)


# ---------------------------------------------------------------------------------------------
# ssh_config: a Jetson named only by its alias, reached through a lab gateway (ProxyJump)
# ---------------------------------------------------------------------------------------------


def test_profile_through_a_jump_host_named_only_in_an_ssh_config(sshd, sshd_gateway, tiny_onnx, tmp_path, capsys):
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host nano\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n  ProxyJump lab-gw\n\n"
        f"Host lab-gw\n  HostName 127.0.0.1\n  Port {sshd_gateway.port}\n  User {sshd_gateway.user}\n"
        f"  IdentityFile {sshd.client_key}\n"
    )
    known = tmp_path / "known_hosts"
    known.write_text(f"{sshd.host_key_line}\n{sshd_gateway.host_key_line}\n")
    hops = sshd_gateway.log.read_text(errors="replace").count("Accepted publickey")
    rc = main(
        [
            "profile",
            "--onnx",
            str(tiny_onnx),
            "--target",
            "ssh://nano",
            "--ssh-config",
            str(config),
            "--known-hosts",
            str(known),
            "--remote-python",
            sys.executable,
            "--remote-backend",
            "onnxruntime",
            "--size",
            "32",
            "--runs",
            "5",
            "--json",
            "-",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    time.sleep(0.2)
    assert sshd_gateway.log.read_text(errors="replace").count("Accepted publickey") == hops + 1  # went via the gateway

    # strict host keys on both hops: without the gateway's key, nothing connects
    known.write_text(f"{sshd.host_key_line}\n")
    opts = SSHOptions(ssh_config=str(config), known_hosts=str(known), connect_timeout=5, remote_python=sys.executable)
    with pytest.raises(RemoteProfilingError, match=rf"unknown host key.*{sshd_gateway.port}.*jump host"):
        RemoteShell.connect(SSHTarget.parse("ssh://nano"), opts)
    known.write_text(f"{sshd_gateway.host_key_line}\n")
    with pytest.raises(RemoteProfilingError, match=rf"unknown host key.*\[127\.0\.0\.1\]:{sshd.port} is not in"):
        RemoteShell.connect(SSHTarget.parse("ssh://nano"), opts)


# ---------------------------------------------------------------------------------------------
# hostile ssh_config and remote folders; paramiko's own logs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line", ['Match host * exec "touch {marker}"', "Match !exec 'touch {marker}'", "match=exec 'touch {marker}'"]
)
def test_a_match_exec_line_is_refused_without_running_it(sshd, tmp_path, capsys, line):
    marker = tmp_path / "MARKER"
    config = tmp_path / "ssh_config"
    config.write_text(f"Host lab-gw\n  HostName 127.0.0.1\n\n{line.format(marker=marker)}\n  User nobody\n")
    known = sshd.known_hosts(tmp_path)
    argv = ["profile", "--target", sshd.url, "--ssh-config", str(config), "--known-hosts", str(known)]
    assert main([*argv, "--size", "32", "--no-count", "--remote-python", sys.executable]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert f"error: ssh config {config}, line 4: `Match exec` is not supported" in err
    assert not marker.exists()
    # the file is a real trap: paramiko's own lookup of the plain target runs the command
    lookup = "import paramiko, sys; paramiko.SSHConfig.from_path(sys.argv[1]).lookup('127.0.0.1')"
    subprocess.run([sys.executable, "-c", lookup, str(config)], stdin=subprocess.DEVNULL, check=True)
    assert marker.exists()


def test_paramiko_logs_stay_off_the_terminal_unless_debug(tmp_path, capsys):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never sends an SSH banner
    try:
        port = silent.getsockname()[1]
        argv = ["profile", "--target", f"ssh://me@127.0.0.1:{port}", "--ssh-config", os.devnull, "--size", "32"]
        known = tmp_path / "known_hosts"
        assert main([*argv, "--known-hosts", str(known), "--no-count", "--connect-timeout", "1"]) == 1  # failed
    finally:
        silent.close()
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and f"me@127.0.0.1:{port}: no SSH banner within 1 s" in err, err
    assert "Traceback" not in err and "Exception (client)" not in err and "paramiko" not in err, err


def test_a_remote_tmpdir_that_is_not_a_folder_is_one_error_line(sshd, tiny_onnx, tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    opts = sshd.options(tmp_path, remote_tmpdir=str(missing))
    with pytest.raises(RemoteProfilingError) as info:
        profile_remote(tiny_onnx, sshd.url, opts, backend="onnxruntime", input_shape=SHAPE, runs=2)
    message = str(info.value)
    assert f"--remote-tmpdir {missing}: not a folder the device's user can use" in message
    assert "No such file or directory" in message and "Traceback" not in message
    assert not missing.exists()
