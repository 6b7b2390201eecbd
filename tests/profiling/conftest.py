"""A real OpenSSH server on loopback for the remote-profiling tests.

Started once per session from Debian's ``/usr/sbin/sshd`` with its own configuration, host key
and authorized key in a temp folder; the "device" is this machine, reached over real SSH.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = Path("/usr/bin/ssh-keygen")


@dataclass(frozen=True)
class SSHServer:
    host: str
    port: int
    user: str
    client_key: Path  # private key whose public half is authorized
    host_key_line: str  # "[127.0.0.1]:port ssh-ed25519 AAAA..." as known_hosts holds it
    root: Path
    log: Path

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"

    def known_hosts(self, folder: Path, *, trusted: bool = True) -> Path:
        """A known_hosts file in ``folder``: with this server's key, or empty."""
        path = folder / "known_hosts"
        path.write_text(self.host_key_line + "\n" if trusted else "", encoding="utf-8")
        return path

    @property
    def device_lock(self) -> str:
        """This server's device lock: its own, so that the suite's xdist workers (each with its own
        server) never queue on the device default, /tmp/rtseg-device-profiler.lock."""
        return str(self.root / "device.lock")

    def options(self, folder: Path, **overrides):
        """SSHOptions for this server: its client key, this interpreter, its own device lock and (unless
        ``known_hosts`` is overridden) a known_hosts file in ``folder`` that trusts it."""
        from profiling._ssh import SSHOptions

        known = overrides.pop("known_hosts", None) or str(self.known_hosts(folder))
        base = SSHOptions(
            key_filename=str(self.client_key),
            known_hosts=known,
            connect_timeout=5,
            command_timeout=120,
            remote_python=sys.executable,
            ssh_config=os.devnull,  # never the tester's own ~/.ssh/config
            device_lock=self.device_lock,
        )
        return replace(base, **overrides)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(
        [str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-C", "rtseg-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _sshd_config(port: int, host_key: Path, pid_file: Path, authorized: Path, forwarding: bool) -> str:
    return "\n".join(
        [
            "ListenAddress 127.0.0.1",
            f"Port {port}",
            f"HostKey {host_key}",
            f"PidFile {pid_file}",
            f"AuthorizedKeysFile {authorized}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            # a gateway (jump host) forwards TCP; the device does not
            f"AllowTcpForwarding {'yes' if forwarding else 'no'}",
            "X11Forwarding no",
            "MaxStartups 100",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "",
        ]
    )


class _PortTaken(RuntimeError):
    """The free port was taken between choosing it and sshd binding it (another xdist worker's server)."""


def _wait_for_banner(port: int, proc: subprocess.Popen, log: Path, pid_file: Path, timeout: float = 15.0) -> None:
    """Wait until this ``proc`` serves SSH on ``port``. sshd writes its pid file only once its listening
    socket is bound, so a banner counts only after the pid file holds this process's id: a banner alone
    could come from another server that took the port first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")
            if "Address already in use" in text:
                raise _PortTaken(text[-500:])
            raise RuntimeError(f"sshd exited with {proc.returncode}: {text[-2000:]}")
        try:
            if pid_file.read_text().strip() == str(proc.pid):
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-2.0"):
                        return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not answer on port {port} within {timeout} s: {log.read_text(errors='replace')}")


def _serve(root: Path, *, forwarding: bool = False, client_key: Path | None = None):
    """Start a real sshd in ``root`` (its own host key and authorized key); yields an :class:`SSHServer`."""
    if not SSHD.exists():
        pytest.skip("/usr/sbin/sshd is absent (install Debian's openssh-server to run the SSH tests)")
    host_key = root / "ssh_host_ed25519_key"
    _keygen(host_key)
    if client_key is None:
        client_key = root / "client_ed25519"
        _keygen(client_key)
    authorized = root / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text(encoding="utf-8"), encoding="utf-8")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege-separation directory sshd insists on
    config, log, pid_file = root / "sshd_config", root / "sshd.log", root / "sshd.pid"
    for attempt in range(3):  # a free port can be taken before sshd binds it: pick another
        port = _free_port()
        config.write_text(_sshd_config(port, host_key, pid_file, authorized, forwarding), encoding="utf-8")
        pid_file.unlink(missing_ok=True)
        with open(log, "wb") as log_fh:
            proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_banner(port, proc, log, pid_file)
            break
        except _PortTaken:
            proc.wait()
            if attempt == 2:
                raise
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    try:
        pub = host_key.with_suffix(".pub").read_text(encoding="utf-8").split()
        server = SSHServer(
            host="127.0.0.1",
            port=port,
            user=getpass.getuser(),
            client_key=client_key,
            host_key_line=f"[127.0.0.1]:{port} {pub[0]} {pub[1]}",
            root=root,
            log=log,
        )
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory) -> SSHServer:
    yield from _serve(tmp_path_factory.mktemp("sshd"))


@pytest.fixture(scope="session")
def sshd_gateway(tmp_path_factory, sshd) -> SSHServer:
    """A second sshd that allows TCP forwarding: a lab gateway in front of ``sshd`` (ProxyJump)."""
    yield from _serve(tmp_path_factory.mktemp("sshd_gateway"), forwarding=True, client_key=sshd.client_key)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """A 2-layer conv net (1x1x32x32 -> 1x3x32x32) written with onnx.helper: a real model, fast to run."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 1, 3, 3)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(8, np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((3, 8, 1, 1)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w1", "b1"], ["h"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("Conv", ["r", "w2"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 32, 32])],
        initializer=[w1, b1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what the ONNX Runtime of JetPack-era wheels reads
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx.save(model, str(path))
    return path
