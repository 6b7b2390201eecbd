"""SSH to the target device: parsing ``ssh://user@host:port``, trusted host keys, commands, uploads.

Key authentication only; the server's host key is checked against a known_hosts file and an
unknown key is refused unless the caller explicitly accepts it (then it is appended to that
file). Every failure is a :class:`RemoteProfilingError` that names ``user@host:port``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paramiko

from rtseg_core import ConfigError, RemoteProfilingError, atomic_write_text

log = logging.getLogger(__name__)

_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class SSHTarget:
    """Where to profile: ``ssh://user@host[:port]`` (port 22 by default)."""

    user: str
    host: str
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> SSHTarget:
        """Read ``ssh://user@host[:port]`` (IPv6 in brackets); :class:`ConfigError` on anything else."""
        hint = "write it as ssh://user@host or ssh://user@host:port"
        if not isinstance(text, str) or not text.startswith("ssh://"):
            raise ConfigError(f"--target {text!r}: not an ssh:// address; {hint}")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"--target {text!r}: {exc}; {hint}") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(f"--target {text!r}: unexpected path, query or fragment; {hint}")
        if parts.password is not None:
            raise ConfigError(
                f"--target {text!r}: passwords are not accepted (key authentication only); "
                "remove ':password' and use an SSH key"
            )
        if not parts.username:
            raise ConfigError(f"--target {text!r}: no user name; {hint}")
        if not _USER.match(parts.username):
            raise ConfigError(f"--target {text!r}: user name {parts.username!r} has characters a user name cannot have")
        host = parts.hostname or ""
        if not host:
            raise ConfigError(f"--target {text!r}: no host; {hint}")
        if ":" in host:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ConfigError(f"--target {text!r}: {host!r} is not an IPv6 address") from None
        elif not _HOSTNAME.match(host):
            raise ConfigError(f"--target {text!r}: {host!r} is not a host name or IP address")
        if port is not None and not 1 <= port <= 65535:
            raise ConfigError(f"--target {text!r}: port {port} is out of range 1-65535")
        return cls(user=parts.username, host=host, port=port or 22)

    @property
    def url(self) -> str:
        """The canonical ``ssh://user@host:port`` (always with the port), as records store it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user}@{host}:{self.port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH and paramiko file this host under in known_hosts."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class SSHOptions:
    """How to reach and use the device.

    ``key_filename``: private key (``None``: the default keys in ~/.ssh and an SSH agent).
    ``known_hosts``: the file host keys are checked against and new ones are added to.
    ``accept_new_host_key``: trust a host that is not in ``known_hosts`` yet and add it (never a
    changed key: a mismatch is always refused). Timeouts in seconds: ``connect_timeout`` for TCP,
    the SSH banner and authentication; ``command_timeout`` for the whole on-device measurement
    (a TensorRT engine build on a Nano takes minutes). ``remote_python`` is the device's
    interpreter (Python >= 3.6); ``remote_tmpdir`` where ``mktemp -d`` makes the work directory
    (``None``: ``$TMPDIR`` or /tmp); ``trtexec_path`` / ``tegrastats_path`` override the search on
    the device. ``password`` exists only to be refused: key authentication only.
    """

    key_filename: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    accept_new_host_key: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 600.0
    remote_python: str = "python3"
    remote_tmpdir: str | None = None
    trtexec_path: str | None = None
    tegrastats_path: str | None = None
    tegrastats_interval_ms: int = 100
    password: str | None = None

    def __post_init__(self) -> None:
        if self.password is not None:
            raise ConfigError(
                "SSHOptions.password: password authentication is not supported; "
                "install a key on the device (ssh-copy-id user@host) and pass key_filename"
            )
        if not self.connect_timeout > 0:
            raise ConfigError(f"SSHOptions.connect_timeout must be > 0 seconds, got {self.connect_timeout!r}")
        if not self.command_timeout > 0:
            raise ConfigError(f"SSHOptions.command_timeout must be > 0 seconds, got {self.command_timeout!r}")
        if not self.remote_python.strip():
            raise ConfigError("SSHOptions.remote_python is empty; give the device's interpreter, e.g. python3")
        if self.remote_tmpdir is not None and not self.remote_tmpdir.startswith("/"):
            raise ConfigError(
                f"SSHOptions.remote_tmpdir must be an absolute path on the device, got {self.remote_tmpdir!r}"
            )
        if not 10 <= self.tegrastats_interval_ms <= 10000:
            raise ConfigError(
                f"SSHOptions.tegrastats_interval_ms must be 10-10000 ms, got {self.tegrastats_interval_ms!r}"
            )

    @property
    def known_hosts_path(self) -> Path:
        return Path(os.path.expanduser(self.known_hosts))


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


def host_key_fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint, as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class _KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse an unknown host, or (when asked to) append its key to the known_hosts file."""

    def __init__(self, target: SSHTarget, options: SSHOptions) -> None:
        self.target = target
        self.options = options

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        path = self.options.known_hosts_path
        fingerprint = host_key_fingerprint(key)
        if not self.options.accept_new_host_key:
            raise RemoteProfilingError(
                f"{self.target}: unknown host key ({key.get_name()} {fingerprint}); {hostname} is not in {path}. "
                f"Check the fingerprint on the device (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then rerun "
                f"with --accept-new-host-key (accept_new_host_key=True) to trust it and add it to {path}"
            )
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        try:
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            if old and not old.endswith("\n"):
                old += "\n"
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_text(path, old + line)
        except OSError as exc:
            raise RemoteProfilingError(
                f"{self.target}: cannot add the host key to {path} ({exc.strerror}); fix the file's permissions"
            ) from None
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning("%s: new host key %s %s added to %s", self.target, key.get_name(), fingerprint, path)


def _load_known_hosts(keys: paramiko.HostKeys, path: Path, target: SSHTarget) -> set[str]:
    """Fill ``keys`` from an OpenSSH known_hosts file; return the base64 blobs marked ``@revoked``.

    Read line by line because paramiko's own loader gives up on the whole file at the first line
    it cannot read (an ``@cert-authority`` line, an unknown key type): such lines are skipped here.
    """
    revoked: set[str] = set()
    if not path.exists():
        return revoked
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RemoteProfilingError(f"{target}: cannot read known_hosts file {path} ({exc.strerror})") from None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            marker, _, rest = line.partition(" ")
            fields = rest.split()
            if marker == "@revoked" and len(fields) >= 3:
                revoked.add(fields[2])
            else:
                log.debug("%s:%d: %s lines are not used (no host certificates)", path, lineno, marker)
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
        except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException, ValueError) as exc:
            log.debug("%s:%d: unreadable known_hosts line skipped (%s)", path, lineno, exc)
            continue
        if entry is None or entry.key is None:
            continue
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)
    return revoked


class RemoteShell:
    """One authenticated SSH connection: run commands with deadlines and upload files by SFTP.

    Use as a context manager (``with RemoteShell.connect(target, options) as sh:``); commands
    are sent as given, so callers quote every argument (``shlex.quote``).
    """

    def __init__(self, target: SSHTarget, options: SSHOptions, client: paramiko.SSHClient) -> None:
        self.target = target
        self.options = options
        self._client = client
        self._sftp: paramiko.SFTPClient | None = None

    @classmethod
    def connect(cls, target: SSHTarget, options: SSHOptions) -> RemoteShell:
        key = options.key_filename
        if key is not None:
            key_path = Path(os.path.expanduser(key))
            if not key_path.is_file():
                raise ConfigError(f"SSH key {key_path}: file not found; give the private key of {target.user}")
            key = str(key_path)
        client = paramiko.SSHClient()
        revoked = _load_known_hosts(client.get_host_keys(), options.known_hosts_path, target)
        client.set_missing_host_key_policy(_KnownHostsPolicy(target, options))
        timeout = options.connect_timeout
        try:
            # our own socket: paramiko uses one `timeout` for TCP and negotiation, and when the
            # negotiation deadline ties with the banner deadline the banner error is lost
            sock = socket.create_connection((target.host, target.port), timeout=timeout)
        except OSError as exc:
            client.close()
            raise _connect_error(target, options, exc) from None
        try:
            client.connect(
                target.host,
                port=target.port,
                username=target.user,
                key_filename=key,
                look_for_keys=key is None,
                allow_agent=key is None,
                sock=sock,
                timeout=timeout + 1.0,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
            )
        except RemoteProfilingError:
            sock.close()
            client.close()
            raise
        except Exception as exc:
            sock.close()
            client.close()
            raise _connect_error(target, options, exc) from None
        transport = client.get_transport()
        server_key = transport.get_remote_server_key() if transport is not None else None
        if server_key is not None and server_key.get_base64() in revoked:
            client.close()
            raise RemoteProfilingError(
                f"{target}: the host key {server_key.get_name()} {host_key_fingerprint(server_key)} is marked "
                f"@revoked in {options.known_hosts_path}; refusing to use this device"
            )
        if transport is not None:
            transport.set_keepalive(30)  # engine builds run for minutes without output
        log.info("connected to %s", target)
        return cls(target, options, client)

    def __enter__(self) -> RemoteShell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:  # closing a dead connection must not hide the real error
                pass
            self._sftp = None
        self._client.close()

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        """Run ``command`` in the remote login shell; :class:`RemoteProfilingError` past ``timeout`` s."""
        timeout = self.options.command_timeout if timeout is None else timeout
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise RemoteProfilingError(f"{self.target}: the SSH connection was lost")
        try:
            chan = transport.open_session(timeout=self.options.connect_timeout)
            chan.exec_command(command)
        except (paramiko.SSHException, OSError) as exc:
            raise RemoteProfilingError(f"{self.target}: cannot start a remote command ({exc})") from None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                busy = False
                if chan.recv_ready():
                    out += chan.recv(65536)
                    busy = True
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    busy = True
                if busy:
                    continue
                if chan.exit_status_ready():
                    break
                if time.monotonic() > deadline:
                    raise RemoteProfilingError(
                        f"{self.target}: remote command did not finish within {timeout:g} s "
                        "(raise SSHOptions.command_timeout / --command-timeout)"
                    )
                if not transport.is_active():
                    raise RemoteProfilingError(f"{self.target}: the SSH connection was lost during a command")
                time.sleep(0.005)
            status = chan.recv_exit_status()
        finally:
            chan.close()
        return CommandResult(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self._client.open_sftp()
            except (paramiko.SSHException, OSError) as exc:
                raise RemoteProfilingError(
                    f"{self.target}: SFTP is not available ({exc}); enable the sftp subsystem in the device's sshd"
                ) from None
        return self._sftp

    def put_file(self, local: str | os.PathLike, remote: str) -> None:
        try:
            self._sftp_client().put(os.fspath(local), remote)
        except (OSError, paramiko.SSHException) as exc:
            raise RemoteProfilingError(f"{self.target}: upload of {local} to {remote} failed ({exc})") from None

    def put_bytes(self, data: bytes, remote: str) -> None:
        try:
            self._sftp_client().putfo(io.BytesIO(data), remote)
        except (OSError, paramiko.SSHException) as exc:
            raise RemoteProfilingError(f"{self.target}: upload to {remote} failed ({exc})") from None


def _connect_error(target: SSHTarget, options: SSHOptions, exc: BaseException) -> RemoteProfilingError:
    """Turn what paramiko and the socket layer raise into one message naming the host and the fix."""
    t = options.connect_timeout
    if isinstance(exc, paramiko.BadHostKeyException):
        return RemoteProfilingError(
            f"{target}: HOST KEY MISMATCH: the server offered {exc.key.get_name()} {host_key_fingerprint(exc.key)} "
            f"but {options.known_hosts_path} has {host_key_fingerprint(exc.expected_key)} "
            f"for {target.known_hosts_name}. "
            "Someone may be intercepting the connection, or the device was reinstalled; if you know it was "
            f"reinstalled, remove the old entry (ssh-keygen -R '{target.known_hosts_name}' "
            f"-f {options.known_hosts_path}) and connect again"
        )
    if isinstance(exc, paramiko.PasswordRequiredException):
        return RemoteProfilingError(
            f"{target}: the private key {options.key_filename} is encrypted; load it into ssh-agent and leave "
            "key_filename unset, or use an unencrypted key for this device"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        which = options.key_filename or "the default keys in ~/.ssh and the SSH agent"
        return RemoteProfilingError(
            f"{target}: authentication refused for {target.user}@{target.host} with {which}; install the public "
            f"key on the device (ssh-copy-id -p {target.port} {target.user}@{target.host}) or pass the right "
            "--key (key authentication only)"
        )
    if isinstance(exc, (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError)):
        return RemoteProfilingError(
            f"{target}: connection refused on port {target.port}; is sshd running on the device and is the port right?"
        )
    if isinstance(exc, socket.gaierror):
        return RemoteProfilingError(f"{target}: cannot resolve host name {target.host!r} ({exc.strerror})")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return RemoteProfilingError(
            f"{target}: no answer within {t:g} s (host down, wrong address or a firewall; raise --connect-timeout "
            "for slow links)"
        )
    if isinstance(exc, paramiko.SSHException):
        text = str(exc)
        if "banner" in text.lower():
            return RemoteProfilingError(
                f"{target}: no SSH banner within {t:g} s; the port answers but not as an SSH server "
                "(wrong port, or the device is overloaded)"
            )
        return RemoteProfilingError(f"{target}: SSH negotiation failed ({text})")
    if isinstance(exc, OSError):
        return RemoteProfilingError(f"{target}: host unreachable ({exc.strerror or exc})")
    return RemoteProfilingError(f"{target}: cannot connect ({type(exc).__name__}: {exc})")
