"""What an ssh_config says about host keys and ports is honoured, or refused with the reason, never
ignored: UserKnownHostsFile, StrictHostKeyChecking, an alias's Port in records and logs; and what a
device row says about threads. Real sshd on loopback (tests/profiling/conftest.py)."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from profiling import ProfileReport
from profiling._remote import profile_remote
from profiling._ssh import RemoteShell, SSHOptions, SSHTarget
from rtseg_core import ConfigError, RemoteProfilingError

SHAPE = (1, 1, 32, 32)


def _config(tmp_path: Path, sshd, **lines: str) -> Path:
    """An ssh_config naming ``sshd`` only by the alias ``nano`` (its port is not 22), plus ``lines``."""
    extra = "".join(f"  {key} {value}\n" for key, value in lines.items())
    path = tmp_path / "ssh_config"
    path.write_text(
        f"Host nano\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n{extra}",
        encoding="utf-8",
    )
    return path


def _options(config: Path, **changes) -> SSHOptions:
    # known_hosts left at its default: the ssh_config's UserKnownHostsFile is what applies
    return SSHOptions(ssh_config=str(config), connect_timeout=5, remote_python=sys.executable, **changes)


def _echo(opts: SSHOptions) -> str:
    with RemoteShell.connect(SSHTarget.parse("ssh://nano"), opts) as sh:
        return sh.run("echo connected").stdout.strip()


def test_user_known_hosts_file_is_read_and_the_alias_port_is_recorded(sshd, tiny_onnx, tmp_path, caplog):
    known = sshd.known_hosts(tmp_path)
    config = _config(tmp_path, sshd, UserKnownHostsFile=f"{tmp_path / 'absent'} {known}")  # every file is read
    with caplog.at_level(logging.INFO, logger="profiling"):
        rec = profile_remote(
            tiny_onnx,
            "ssh://nano",
            _options(config, device_lock=sshd.device_lock),
            backend="onnxruntime",
            input_shape=SHAPE,
            warmup=1,
            runs=3,
        )
    # the port the connection used, not 22; the user the ssh_config gave
    assert rec.target == f"ssh://{sshd.user}@nano:{sshd.port}"
    assert any(f":{sshd.port} (nano)" in r.getMessage() and "connected to" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "absent").exists()

    # no number for the threads: the table says why instead of "-"
    trt = dataclasses.replace(rec, backend="tensorrt", provider="trtexec 8.0.1")
    table = ProfileReport("tiny", "onnx", rec.target, None, (rec, trt)).format_table()
    assert "ORT default" in table and "n/a (trtexec)" in table
    assert "thr n/a (trtexec): TensorRT runs the graph on the device's GPU" in table
    assert "thr ORT default: no --threads given" in table

    # --known-hosts, when given, wins over the ssh_config (as ssh -o does): an empty file refuses the host
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(RemoteProfilingError, match=rf"unknown host key.*is not in {empty}"):
        _echo(_options(config, known_hosts=str(empty)))


def test_accept_new_in_ssh_config_adds_an_unknown_key_and_refuses_a_changed_one(sshd, tmp_path):
    known = tmp_path / "new" / "known_hosts"  # not there yet
    config = _config(tmp_path, sshd, UserKnownHostsFile=str(known), StrictHostKeyChecking="accept-new")
    assert _echo(_options(config)) == "connected"
    assert known.read_text(encoding="utf-8").splitlines() == [sshd.host_key_line]
    assert _echo(_options(config)) == "connected"  # now a known host

    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n", encoding="utf-8")
    with pytest.raises(RemoteProfilingError, match=rf"HOST KEY MISMATCH.*{known}"):
        _echo(_options(config))
    assert known.read_text(encoding="utf-8") == f"[127.0.0.1]:{sshd.port} {kind} {blob}\n"

    # without accept-new (the default, yes, or ask: nobody to ask) an unknown key is refused, naming the way out
    for value in ("yes", "ask"):
        strict = _config(tmp_path, sshd, UserKnownHostsFile=str(tmp_path / "none_yet"), StrictHostKeyChecking=value)
        with pytest.raises(RemoteProfilingError, match="unknown host key.*StrictHostKeyChecking accept-new"):
            _echo(_options(strict))
        assert not (tmp_path / "none_yet").exists()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ({"StrictHostKeyChecking": "no"}, "StrictHostKeyChecking no for nano would accept any host key"),
        ({"StrictHostKeyChecking": "off"}, "StrictHostKeyChecking off for nano would accept any host key"),
        ({"StrictHostKeyChecking": "maybe"}, "StrictHostKeyChecking 'maybe' for nano: use yes or accept-new"),
        ({"UserKnownHostsFile": "/dev/null none"}, "UserKnownHostsFile of nano is 'none'"),
        ({"UserKnownHostsFile": "~/kh_%C"}, "uses %C, which is not supported"),
    ],
)
def test_host_key_settings_that_cannot_be_honoured_are_refused_before_connecting(sshd, tmp_path, lines, message):
    config = _config(tmp_path, sshd, **lines)
    with pytest.raises(ConfigError, match=message):
        _echo(_options(config))
