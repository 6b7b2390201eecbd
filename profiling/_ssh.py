"""SSH to the target device: parsing ``ssh://user@host:port``, trusted host keys, commands, uploads.

Key authentication only; the server's host key is checked against a known_hosts file and an
unknown key is refused unless the caller explicitly accepts it (then it is appended to that
file). Every failure is a :class:`RemoteProfilingError` that names ``user@host:port``.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import io
import ipaddress
import logging
import math
import os
import re
import shlex
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import paramiko

from rtseg_core import ConfigError, InputFileError, RemoteProfilingError, atomic_write_text

log = logging.getLogger(__name__)

MAX_TIMEOUT_S = 7 * 86400.0  # finite: an infinite timeout is the hang these options exist to prevent
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"  # SSHOptions' default; an ssh_config's UserKnownHostsFile replaces it
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class SSHTarget:
    """Where to profile: ``ssh://[user@]host[:port]`` (port 22 by default).

    ``host`` may be a ``Host`` alias of the ssh_config file (``ssh://nano``); the user, port, key
    and jump hosts left out here are then taken from it (:func:`resolve_route`), as ``ssh`` does.
    """

    user: str | None
    host: str
    port: int = 22
    port_given: bool = field(default=True, compare=False)  # False: ssh_config's Port may apply

    @classmethod
    def parse(cls, text: str) -> SSHTarget:
        """Read ``ssh://user@host[:port]`` (IPv6 in brackets); :class:`ConfigError` on anything else."""
        hint = "write it as ssh://user@host, ssh://user@host:port or ssh://ALIAS (a Host of your ssh_config)"
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
        if parts.username is not None and not _USER.match(parts.username):
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
        return cls(user=parts.username or None, host=host, port=port or 22, port_given=port is not None)

    @property
    def url(self) -> str:
        """The canonical ``ssh://user@host:port`` (always with the port), as records store it."""
        return f"ssh://{self}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH and paramiko file this host under in known_hosts."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class SSHOptions:
    """How to reach and use the device.

    ``key_filename``: private key (``None``: the default keys in ~/.ssh and an SSH agent).
    ``known_hosts``: the file host keys are checked against and new ones are added to (left at
    its default, a host's ``UserKnownHostsFile`` in the ssh_config applies instead, as in ``ssh``).
    ``accept_new_host_key``: trust a host that is not in ``known_hosts`` yet and add it (never a
    changed key: a mismatch is always refused); ``StrictHostKeyChecking accept-new`` in the
    ssh_config does the same for its hosts, and ``StrictHostKeyChecking no`` is refused.
    Timeouts in seconds: ``connect_timeout`` for TCP, the SSH banner, key exchange, authentication
    and opening a channel; ``command_timeout`` for the whole on-device measurement (a TensorRT
    engine build on a Nano takes minutes); ``stall_timeout`` for an upload that makes no progress.
    ``ssh_config``: the OpenSSH client config to honour (``Host`` aliases, ``HostName``, ``User``,
    ``Port``, ``IdentityFile``, ``ProxyJump``, ``UserKnownHostsFile``, ``StrictHostKeyChecking``); ``None``
    = ``$RTSEG_SSH_CONFIG`` or ``~/.ssh/config`` when present. ``remote_python`` is the device's
    interpreter (Python >= 3.6); ``remote_tmpdir`` where ``mktemp -d`` makes the work directory
    (``None``: ``$TMPDIR`` or /tmp); ``trtexec_path`` / ``tegrastats_path`` override the search on
    the device. ``device_lock``: the lock file on the device that queues concurrent profiles (``None``: the
    device script's /tmp/rtseg-device-profiler.lock, which every user of the device shares; a call's
    ``lock_path`` wins over it). ``password`` exists only to be refused: key authentication only.
    """

    key_filename: str | None = None
    known_hosts: str = DEFAULT_KNOWN_HOSTS
    accept_new_host_key: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 600.0
    remote_python: str = "python3"
    remote_tmpdir: str | None = None
    trtexec_path: str | None = None
    tegrastats_path: str | None = None
    tegrastats_interval_ms: int = 100
    stall_timeout: float = 60.0
    ssh_config: str | None = None
    device_lock: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if self.password is not None:
            raise ConfigError(
                "SSHOptions.password: password authentication is not supported; "
                "install a key on the device (ssh-copy-id user@host) and pass key_filename"
            )
        for name in ("connect_timeout", "command_timeout", "stall_timeout"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or not 0 < value <= MAX_TIMEOUT_S:
                raise ConfigError(
                    f"SSHOptions.{name} (--{name.replace('_', '-')}) must be > 0 and <= {MAX_TIMEOUT_S:g} seconds, "
                    f"got {value!r}"
                )
        if not self.remote_python.strip():
            raise ConfigError("SSHOptions.remote_python is empty; give the device's interpreter, e.g. python3")
        if self.device_lock is not None and not self.device_lock.startswith("/"):
            raise ConfigError(
                f"SSHOptions.device_lock must be an absolute path on the device, got {self.device_lock!r}"
            )
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

    @property
    def ssh_config_path(self) -> Path | None:
        """The ssh_config file to read, or None (the default file is absent)."""
        if self.ssh_config:
            return Path(os.path.expanduser(self.ssh_config))
        env = os.environ.get("RTSEG_SSH_CONFIG")
        if env:
            return Path(os.path.expanduser(env))
        default = Path(os.path.expanduser("~/.ssh/config"))
        return default if default.is_file() else None


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


def host_key_fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint, as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Hop:
    """One SSH connection of a route: the address really dialled and how to log in there."""

    name: str  # as the user wrote it (an ssh_config alias, or the host)
    host: str  # HostName
    port: int
    user: str
    key_files: tuple[str, ...] | None  # None: the default keys in ~/.ssh and the SSH agent
    # host keys are checked against these files (all read; a new key goes to the first) ...
    known_hosts: tuple[Path, ...] = (Path(os.path.expanduser(DEFAULT_KNOWN_HOSTS)),)
    accept_new: bool = False  # ... and an unknown one is refused unless this (never a changed one)

    @property
    def known_hosts_file(self) -> Path:
        """Where a new host key is recorded, and the file messages name."""
        return self.known_hosts[0]

    @property
    def known_hosts_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        alias = f" ({self.name})" if self.name != self.host else ""
        return f"{self.user}@{host}:{self.port}{alias}"


def resolve_route(target: SSHTarget, options: SSHOptions) -> list[Hop]:
    """The hops to the device: its ``ProxyJump`` hosts in order, then the device itself.

    Follows the OpenSSH client: values in the target (user, port) and ``--key`` win over the
    ssh_config file, which wins over the defaults (the local user name, port 22, default keys).
    ``ProxyCommand`` is refused (it would run a local shell command); use ``ProxyJump``.
    """
    config = _read_ssh_config(options)
    final = _hop(target, options, config, key_override=options.key_filename)
    jumps_text = _lookup(config, target.host).get("proxyjump", "")
    jumps: list[Hop] = []
    if jumps_text and jumps_text.lower() != "none":
        for spec in jumps_text.split(","):
            spec = spec.strip()
            text = spec if spec.startswith("ssh://") else f"ssh://{spec}"
            try:
                jump = SSHTarget.parse(text)
            except ConfigError as exc:
                raise ConfigError(f"{options.ssh_config_path}: ProxyJump {spec!r} of {target.host}: {exc}") from None
            jumps.append(_hop(jump, options, config, key_override=None))
    return [*jumps, final]


def _read_ssh_config(options: SSHOptions) -> paramiko.SSHConfig | None:
    path = options.ssh_config_path
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"ssh config {path}: file not found (--ssh-config / RTSEG_SSH_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"ssh config {path}: cannot read it ({exc})") from None
    _refuse_match_exec(path, text)  # before paramiko: its lookup runs every `Match exec` command
    try:
        return paramiko.SSHConfig.from_text(text)
    except Exception as exc:  # paramiko.ssh_exception.ConfigParseError and friends
        raise ConfigError(f"ssh config {path}: {type(exc).__name__}: {exc}") from None


_KEYWORD = re.compile(r"(\w+)(?:\s*=\s*|\s+)(.+)")  # how paramiko (and OpenSSH) split a line into keyword, value
_MATCH_NO_ARGUMENT = ("all", "canonical", "final")


def _refuse_match_exec(path: Path, text: str) -> None:
    """Refuse a ``Match exec`` line: paramiko's ``SSHConfig.lookup`` runs its command in a local shell
    for every host looked up, a plain ``ssh://user@host:port`` target included (the reason
    ``ProxyCommand`` is refused too). Found by reading the lines as paramiko does, never by running them.
    """
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        m = _KEYWORD.match(line)
        if not m or line.startswith("#") or m.group(1).lower() != "match":
            continue
        try:
            tokens = shlex.split(m.group(2))
        except ValueError:
            tokens = m.group(2).split()
        while tokens:
            criterion = tokens.pop(0).lstrip("!").lower()
            if criterion == "exec":
                raise ConfigError(
                    f"ssh config {path}, line {number}: `Match exec` is not supported (it would run a local "
                    f"shell command, {' '.join(tokens[:1])[:60]!r}, for every host looked up); remove it, or "
                    "give --ssh-config a file without it"
                )
            if criterion not in _MATCH_NO_ARGUMENT and tokens:
                tokens.pop(0)


def _lookup(config: paramiko.SSHConfig | None, host: str) -> dict:
    if config is None:
        return {}
    try:
        return dict(config.lookup(host))
    except Exception as exc:  # a Match exec line, a bad token...
        raise ConfigError(f"ssh config: cannot look up {host!r} ({type(exc).__name__}: {exc})") from None


def _hop(target: SSHTarget, options: SSHOptions, config, *, key_override: str | None) -> Hop:
    found = _lookup(config, target.host)
    command = found.get("proxycommand")
    if command and command.lower() != "none":
        raise ConfigError(
            f"ssh config {options.ssh_config_path}: ProxyCommand for {target.host!r} is not supported "
            "(it would run a local shell command); use ProxyJump"
        )
    port = target.port
    if not target.port_given and "port" in found:
        try:
            port = int(found["port"])
        except ValueError:
            raise ConfigError(
                f"ssh config {options.ssh_config_path}: Port {found['port']!r} of {target.host}"
            ) from None
    if key_override is not None:
        keys: tuple[str, ...] | None = (key_override,)
    elif found.get("identityfile"):
        keys = tuple(found["identityfile"])
    else:
        keys = None
    if keys is not None:
        expanded = []
        for key in keys:
            path = Path(os.path.expanduser(key))
            if not path.is_file():
                raise InputFileError(f"SSH key {path}: file not found; give the private key for {target.host}")
            expanded.append(str(path))
        keys = tuple(expanded)
    host = found.get("hostname", target.host)
    user = target.user or found.get("user") or getpass.getuser()
    return Hop(
        name=target.host,
        host=host,
        port=port,
        user=user,
        key_files=keys,
        known_hosts=_known_hosts_files(found, options, target.host, user),
        accept_new=_accept_new(found, options, target.host),
    )


def _known_hosts_files(found: dict, options: SSHOptions, name: str, user: str) -> tuple[Path, ...]:
    """``--known-hosts`` when given, else the host's ``UserKnownHostsFile`` (``~``, ``%d``, ``%u``, ``%h``
    and ``%%`` expanded, as ``ssh`` does), else the default ~/.ssh/known_hosts."""
    if options.known_hosts != DEFAULT_KNOWN_HOSTS or not found.get("userknownhostsfile"):
        return (options.known_hosts_path,)
    where = f"ssh config {options.ssh_config_path}: UserKnownHostsFile of {name}"
    try:
        names = shlex.split(found["userknownhostsfile"])
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not names or any(n.lower() == "none" for n in names):
        raise ConfigError(
            f"{where} is 'none': host keys are always checked here, against a file; name one, or leave the line out "
            "for ~/.ssh/known_hosts"
        )
    tokens = {"%d": os.path.expanduser("~"), "%u": user, "%h": name, "%%": "%"}
    files = []
    for text in names:
        unknown = [t for t in re.findall(r"%.", text) if t not in tokens]
        if unknown:
            raise ConfigError(f"{where}: {text!r} uses {', '.join(unknown)}, which is not supported (%d, %u, %h, ~)")
        files.append(Path(os.path.expanduser(re.sub(r"%.", lambda m: tokens[m.group(0)], text))))
    return tuple(files)


def _accept_new(found: dict, options: SSHOptions, name: str) -> bool:
    """Whether an unknown host key may be added: ``--accept-new-host-key``, or ``StrictHostKeyChecking
    accept-new`` for this host. ``no``/``off`` (accept any key, a changed one too) is refused, never
    ignored; ``yes`` and ``ask`` (there is no one to ask) refuse an unknown key."""
    value = str(found.get("stricthostkeychecking", "")).strip().lower()
    if value in ("no", "off"):
        raise ConfigError(
            f"ssh config {options.ssh_config_path}: StrictHostKeyChecking {value} for {name} would accept any host "
            "key, a changed one too; host keys are always checked here. Use StrictHostKeyChecking accept-new (adds "
            "an unknown key, refuses a changed one) or --accept-new-host-key"
        )
    if value not in ("", "yes", "ask", "accept-new"):
        raise ConfigError(
            f"ssh config {options.ssh_config_path}: StrictHostKeyChecking {value!r} for {name}: use yes or accept-new"
        )
    return options.accept_new_host_key or value == "accept-new"


class _KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse an unknown or revoked host key, or (when asked to) record a new one in known_hosts.

    Runs during key exchange, before any authentication: a refused host never sees our key.
    """

    def __init__(self, hop: Hop, options: SSHOptions, revoked: set[str]) -> None:
        self.hop = hop
        self.options = options
        self.revoked = revoked

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        path = self.hop.known_hosts_file
        fingerprint = host_key_fingerprint(key)
        if key.get_base64() in self.revoked:
            raise RemoteProfilingError(
                f"{self.hop}: the host key {key.get_name()} {fingerprint} is marked @revoked in {path}; "
                "refusing to use this host (nothing was sent to it and nothing was written)"
            )
        if not self.hop.accept_new:
            files = ", ".join(map(str, self.hop.known_hosts))
            raise RemoteProfilingError(
                f"{self.hop}: unknown host key ({key.get_name()} {fingerprint}); {hostname} is not in {files}. "
                f"Check the fingerprint on the device (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then rerun "
                f"with --accept-new-host-key (accept_new_host_key=True, or StrictHostKeyChecking accept-new in the "
                f"ssh config) to trust it and add it to {path}"
            )
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        # write through a symlink (dotfile managers link ~/.ssh/known_hosts) and keep the file's mode
        real = Path(os.path.realpath(path))
        try:
            old = real.read_text(encoding="utf-8") if real.exists() else ""
            mode = stat.S_IMODE(real.stat().st_mode) if real.exists() else 0o600
            if old and not old.endswith("\n"):
                old += "\n"
            real.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_text(real, old + line)
            os.chmod(real, mode)
        except (OSError, UnicodeDecodeError) as exc:
            raise RemoteProfilingError(
                f"{self.hop}: cannot add the host key to {path} ({getattr(exc, 'strerror', None) or exc}); "
                "fix the file's permissions"
            ) from None
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning("%s: new host key %s %s added to %s", self.hop, key.get_name(), fingerprint, path)


def _load_known_hosts(keys: paramiko.HostKeys, path: Path, target: object) -> set[str]:
    """Fill ``keys`` from an OpenSSH known_hosts file; return the base64 blobs marked ``@revoked``.

    Read line by line because paramiko's own loader gives up on the whole file at the first line
    it cannot read (an ``@cert-authority`` line, an unknown key type): such lines are skipped here.
    A revoked key is never trusted, even where another line lists it for the host.
    """
    revoked: set[str] = set()
    if not path.exists():
        return revoked
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RemoteProfilingError(f"{target}: cannot read known_hosts file {path} ({exc.strerror})") from None
    entries = []
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
        if entry is not None and entry.key is not None:
            entries.append(entry)
    for entry in entries:
        if entry.key.get_base64() in revoked:
            continue
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)
    return revoked


class _Deadline:
    """A watchdog: unless kicked within ``seconds``, it runs ``on_expiry`` (closing the connection).

    paramiko has no timeout on several blocking steps (a channel request, an SFTP write waiting
    for window space); closing the transport from this timer wakes them all with an error.
    """

    def __init__(self, seconds: float, on_expiry) -> None:
        self.seconds = seconds
        self.on_expiry = on_expiry
        self.expired = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def _fire(self) -> None:
        self.expired = True
        self.on_expiry()

    def kick(self, *_: object) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if not self.expired:
                self._timer = threading.Timer(self.seconds, self._fire)
                self._timer.daemon = True
                self._timer.start()

    def __enter__(self) -> _Deadline:
        self.kick()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


class RemoteShell:
    """One authenticated SSH connection (through its jump hosts): commands with deadlines, SFTP uploads.

    Use as a context manager (``with RemoteShell.connect(target, options) as sh:``); commands
    are sent as given, so callers quote every argument (``shlex.quote``). Every network step has
    a deadline; when one passes, the connection is closed and :class:`RemoteProfilingError` says
    which step stalled.
    """

    def __init__(
        self, target: SSHTarget, options: SSHOptions, client: paramiko.SSHClient, jumps: list | None = None
    ) -> None:
        self.target = target
        self.options = options
        self._client = client
        self._jumps: list[paramiko.SSHClient] = list(jumps or [])
        self._sftp: paramiko.SFTPClient | None = None

    @classmethod
    def connect(cls, target: SSHTarget, options: SSHOptions) -> RemoteShell:
        route = resolve_route(target, options)
        clients: list[paramiko.SSHClient] = []
        sock = None
        try:
            for i, hop in enumerate(route):
                via = f" (jump host on the way to {route[-1]})" if i < len(route) - 1 else ""
                clients.append(_connect_hop(hop, options, sock, via))
                if i < len(route) - 1:
                    sock = _open_tunnel(clients[-1], hop, route[i + 1], options)
        except BaseException:
            for client in reversed(clients):
                client.close()
            raise
        log.info("connected to %s%s", route[-1], f" via {', '.join(map(str, route[:-1]))}" if len(route) > 1 else "")
        # records and messages name the user and port really used (an alias's Port, not 22)
        resolved = SSHTarget(user=route[-1].user, host=target.host, port=route[-1].port)
        return cls(resolved, options, clients[-1], clients[:-1])

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
        for jump in reversed(self._jumps):
            jump.close()

    def _abort(self) -> None:
        """Close every connection of the route (from a watchdog thread): blocked calls wake with an error."""
        for client in [self._client, *self._jumps]:
            try:
                client.close()
            except Exception:
                pass

    def _stalled(self, deadline: _Deadline, what: str) -> RemoteProfilingError:
        return RemoteProfilingError(
            f"{self.target}: the device stopped answering: no progress for {deadline.seconds:g} s during {what}; "
            "the connection was closed (check the device and the network; raise --stall-timeout / "
            "--connect-timeout for slow links)"
        )

    def _lost(self, what: str) -> RemoteProfilingError:
        return RemoteProfilingError(
            f"{self.target}: the SSH connection dropped during {what} (network or device down); the device-side "
            "job stops with the connection and its work directory is removed then or on the next connection"
        )

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        """Run ``command`` in the remote login shell; :class:`RemoteProfilingError` past ``timeout`` s.

        Output is read until end-of-file on both streams before the exit status is taken, so a
        fast command never loses the end of its output to the status arriving first.
        """
        timeout = self.options.command_timeout if timeout is None else timeout
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise self._lost("the start of a command")
        with _Deadline(self.options.connect_timeout, self._abort) as deadline:
            try:
                chan = transport.open_session(timeout=self.options.connect_timeout)
                chan.exec_command(command)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                if deadline.expired:
                    raise self._stalled(deadline, "the start of a remote command") from None
                if not transport.is_active():
                    raise self._lost("the start of a command") from None
                raise RemoteProfilingError(f"{self.target}: cannot start a remote command ({exc})") from None
        out, err = bytearray(), bytearray()
        end = time.monotonic() + timeout
        try:
            while True:
                # EOF (or close) is read before draining: the data precedes it on the wire, so once it
                # is seen, everything the command printed is already in paramiko's buffers.
                done = chan.eof_received or chan.closed
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if done:
                    break
                self._check_running(transport, end, timeout)
                time.sleep(0.005)
            while not chan.status_event.wait(0.05):
                self._check_running(transport, end, timeout)
                if chan.closed and not chan.status_event.is_set():
                    break  # closed with no exit status (killed by a signal): returncode -1
            status = chan.recv_exit_status() if chan.status_event.is_set() else -1
            if status == -1 and not transport.is_active():  # paramiko closes the channel when the link dies
                raise self._lost("a command")
        finally:
            chan.close()
        return CommandResult(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def _check_running(self, transport: paramiko.Transport, end: float, timeout: float) -> None:
        if not transport.is_active():
            raise self._lost("a command")
        if time.monotonic() > end:
            raise RemoteProfilingError(
                f"{self.target}: remote command did not finish within {timeout:g} s "
                "(raise SSHOptions.command_timeout / --command-timeout)"
            )

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            transport = self._client.get_transport()
            if transport is None or not transport.is_active():
                raise self._lost("an upload")
            with _Deadline(self.options.connect_timeout, self._abort) as deadline:
                try:
                    chan = transport.open_session(timeout=self.options.connect_timeout)
                    chan.invoke_subsystem("sftp")
                    chan.settimeout(self.options.stall_timeout)  # every SFTP read and write from here on
                    self._sftp = paramiko.SFTPClient(chan)
                except (paramiko.SSHException, OSError, EOFError) as exc:
                    if deadline.expired:
                        raise self._stalled(deadline, "opening SFTP") from None
                    raise RemoteProfilingError(
                        f"{self.target}: SFTP is not available ({exc}); enable the sftp subsystem in the device's sshd"
                    ) from None
        return self._sftp

    def _upload(self, what: str, send) -> None:
        sftp = self._sftp_client()
        with _Deadline(self.options.stall_timeout, self._abort) as deadline:
            try:
                send(sftp, deadline.kick)
            except (OSError, paramiko.SSHException, EOFError) as exc:
                if deadline.expired or isinstance(exc, socket.timeout):
                    self._abort()
                    raise self._stalled(deadline, what) from None
                transport = self._client.get_transport()
                if transport is None or not transport.is_active():
                    raise self._lost(what) from None
                raise RemoteProfilingError(f"{self.target}: {what} failed ({exc})") from None

    def put_file(self, local: str | os.PathLike, remote: str) -> None:
        self._upload(
            f"the upload of {local} to {remote}", lambda sftp, kick: sftp.put(os.fspath(local), remote, callback=kick)
        )

    def put_bytes(self, data: bytes, remote: str) -> None:
        self._upload(f"the upload to {remote}", lambda sftp, kick: sftp.putfo(io.BytesIO(data), remote, callback=kick))


def _connect_hop(hop: Hop, options: SSHOptions, sock, via: str) -> paramiko.SSHClient:
    """One authenticated SSH connection to ``hop`` (over ``sock``, a tunnel, when it is behind a jump host)."""
    client = paramiko.SSHClient()
    revoked: set[str] = set()
    for path in hop.known_hosts:
        revoked |= _load_known_hosts(client.get_host_keys(), path, hop)
    client.set_missing_host_key_policy(_KnownHostsPolicy(hop, options, revoked))
    timeout = options.connect_timeout
    if sock is None:
        try:
            # our own socket: paramiko uses one `timeout` for TCP and negotiation, and when the
            # negotiation deadline ties with the banner deadline the banner error is lost
            sock = socket.create_connection((hop.host, hop.port), timeout=timeout)
        except OSError as exc:
            client.close()
            raise _connect_error(hop, options, exc, via) from None

    def abort() -> None:
        try:
            sock.close()
        except Exception:
            pass

    keys = list(hop.key_files) if hop.key_files else None
    # belt and braces over paramiko's banner/auth timeouts: key exchange has none of its own
    with _Deadline(3 * timeout + 5, abort) as deadline:
        try:
            client.connect(
                hop.host,
                port=hop.port,
                username=hop.user,
                key_filename=keys,
                look_for_keys=keys is None,
                allow_agent=keys is None,
                sock=sock,
                timeout=timeout + 1.0,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
            )
        except RemoteProfilingError as exc:
            sock.close()
            client.close()
            if via:
                raise RemoteProfilingError(f"{exc}{via}") from None
            raise
        except Exception as exc:
            sock.close()
            client.close()
            if deadline.expired:
                raise RemoteProfilingError(
                    f"{hop}{via}: no answer within {deadline.seconds:g} s while connecting (key exchange or "
                    "authentication stalled); raise --connect-timeout for slow links"
                ) from None
            raise _connect_error(hop, options, exc, via) from None
    transport = client.get_transport()
    server_key = transport.get_remote_server_key() if transport is not None else None
    if server_key is not None and server_key.get_base64() in revoked:  # also refused earlier, by the policy
        client.close()
        raise RemoteProfilingError(
            f"{hop}{via}: the host key {server_key.get_name()} {host_key_fingerprint(server_key)} is marked "
            f"@revoked in {hop.known_hosts_file}; refusing to use this host"
        )
    if transport is not None:
        transport.set_keepalive(30)  # engine builds run for minutes without output
    return client


def _open_tunnel(client: paramiko.SSHClient, jump: Hop, nxt: Hop, options: SSHOptions):
    """A direct-tcpip channel through ``jump`` to the next hop: the socket the next connection runs over."""
    transport = client.get_transport()
    try:
        return transport.open_channel(
            "direct-tcpip", (nxt.host, nxt.port), ("127.0.0.1", 0), timeout=options.connect_timeout
        )
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise RemoteProfilingError(
            f"{jump}: the jump host would not open a connection to {nxt.host}:{nxt.port} ({exc}); "
            "does its sshd allow TCP forwarding (AllowTcpForwarding) and can it reach the device?"
        ) from None


def _connect_error(target: Hop, options: SSHOptions, exc: BaseException, via: str = "") -> RemoteProfilingError:
    """Turn what paramiko and the socket layer raise into one message naming the host and the fix."""
    error = _connect_error_text(target, options, exc)
    return RemoteProfilingError(f"{error}{via}") if via else error


def _connect_error_text(target: Hop, options: SSHOptions, exc: BaseException) -> RemoteProfilingError:
    t = options.connect_timeout
    if isinstance(exc, paramiko.BadHostKeyException):
        return RemoteProfilingError(
            f"{target}: HOST KEY MISMATCH: the server offered {exc.key.get_name()} {host_key_fingerprint(exc.key)} "
            f"but {', '.join(map(str, target.known_hosts))} has {host_key_fingerprint(exc.expected_key)} "
            f"for {target.known_hosts_name}. "
            "Someone may be intercepting the connection, or the device was reinstalled; if you know it was "
            f"reinstalled, remove the old entry (ssh-keygen -R '{target.known_hosts_name}' "
            f"-f {target.known_hosts_file}) and connect again"
        )
    if isinstance(exc, paramiko.PasswordRequiredException):
        return RemoteProfilingError(
            f"{target}: the private key {options.key_filename} is encrypted; load it into ssh-agent and leave "
            "key_filename unset, or use an unencrypted key for this device"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        which = ", ".join(target.key_files or ()) or "the default keys in ~/.ssh and the SSH agent"
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
