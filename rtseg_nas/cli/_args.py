"""Arguments shared by several verbs, defined once so they read the same everywhere."""

from __future__ import annotations

import argparse
import json


def add_arch(p: argparse.ArgumentParser, *, default: str | None = "paper") -> None:
    p.add_argument(
        "--arch",
        default=default,
        help="a preset (paper, paper-figure, unext) or an RTSegConfig JSON file (default: %(default)s)",
    )


def add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="synthetic",
        help="dataset: 'synthetic' (built-in phantom; 'synthetic:N' for N images), 'jnu-ifm:PATH' or "
        "'psfhs:PATH' (default: %(default)s)",
    )


def add_size(p: argparse.ArgumentParser, default: int = 256) -> None:
    p.add_argument("--size", type=int, default=default, help="input height and width in pixels (default: %(default)s)")


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N (default: auto)")


def add_json_out(p: argparse.ArgumentParser, what: str) -> None:
    """``--json [PATH]``, the same on every verb: write ``what`` as JSON to PATH; ``-`` (or no PATH)
    prints only the JSON on stdout, so that it pipes into ``jq`` or ``json.load``."""
    p.add_argument(
        "--json",
        metavar="PATH",
        nargs="?",
        const="-",
        help=f"also write {what} as JSON to PATH; '-' or no PATH: print only the JSON on stdout",
    )


def write_json_out(target: str, data) -> None:
    """Where :func:`add_json_out`'s ``--json`` said: stdout for ``-``, else an atomic file write."""
    if target == "-":
        print(json.dumps(data, indent=2, default=str))
        return
    from rtseg_core import atomic_write_json

    atomic_write_json(target, data)


def add_model_source(p: argparse.ArgumentParser, *, onnx: bool = True) -> None:
    """--arch / --checkpoint [/ --onnx]: what to profile (the paper preset when none is given)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--arch", help="a preset (paper, paper-figure, unext) or an RTSegConfig JSON file (default: paper)"
    )
    group.add_argument("--checkpoint", metavar="CKPT", help="a checkpoint written by train/prune")
    if onnx:
        group.add_argument(
            "--onnx", metavar="FILE", help="an ONNX file (no counts; ONNX Runtime or remote timing only)"
        )


def model_source(args: argparse.Namespace) -> str:
    return getattr(args, "onnx", None) or args.checkpoint or args.arch or "paper"


def add_ssh(p: argparse.ArgumentParser) -> None:
    """Options of an ``ssh://user@host[:port]`` target (a Jetson): keys, host-key trust, timeouts, tools."""
    ssh = p.add_argument_group("SSH target (--target ssh://...)")
    ssh.add_argument("--key", metavar="FILE", help="private key file (default: ~/.ssh keys and the SSH agent)")
    ssh.add_argument("--known-hosts", metavar="FILE", default="~/.ssh/known_hosts", help="(default: %(default)s)")
    ssh.add_argument(
        "--accept-new-host-key", action="store_true", help="trust and record a host not yet in known_hosts"
    )
    ssh.add_argument("--connect-timeout", type=float, default=10.0, help="seconds (default: %(default)s)")
    ssh.add_argument(
        "--command-timeout", type=float, default=600.0, help="seconds per remote command (default: %(default)s)"
    )
    ssh.add_argument("--remote-python", default="python3", help="the device's Python >= 3.6 (default: %(default)s)")
    ssh.add_argument("--remote-tmpdir", help="parent of the remote temporary directory (default: the device's TMPDIR)")
    ssh.add_argument("--trtexec", metavar="PATH", help="trtexec on the device (default: PATH, /usr/src/tensorrt/bin)")
    ssh.add_argument("--tegrastats", metavar="PATH", help="tegrastats on the device (default: found on PATH)")
    ssh.add_argument("--tegrastats-interval", type=int, default=100, help="power sampling period in ms (default: 100)")
    ssh.add_argument(
        "--remote-backend",
        choices=("auto", "onnxruntime", "trtexec"),
        default="auto",
        help="runtime on the device (default: %(default)s = trtexec if present, else onnxruntime)",
    )


def ssh_options_from(args: argparse.Namespace):
    """``profiling.SSHOptions`` from :func:`add_ssh`'s options, or None when the target is not SSH."""
    if not str(getattr(args, "target", "")).startswith("ssh://"):
        return None
    from profiling import SSHOptions

    return SSHOptions(
        key_filename=args.key,
        known_hosts=args.known_hosts,
        accept_new_host_key=args.accept_new_host_key,
        connect_timeout=args.connect_timeout,
        command_timeout=args.command_timeout,
        remote_python=args.remote_python,
        remote_tmpdir=args.remote_tmpdir,
        trtexec_path=args.trtexec,
        tegrastats_path=args.tegrastats,
        tegrastats_interval_ms=args.tegrastats_interval,
    )
