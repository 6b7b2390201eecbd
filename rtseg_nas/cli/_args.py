"""Arguments shared by several verbs, defined once so they read the same everywhere."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from profiling import SSHOptions, TimingOptions

# -- numeric option types ---------------------------------------------------------------------
# Every numeric option goes through one of these, so 0, negatives, NaN, infinity and absurd sizes
# are refused by argparse (one `error: argument --x: ...` line, exit 2) instead of being silently
# replaced by a default or allocating gigabytes. Bounds are generous: they catch typos, not taste.


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``lo`` to ``hi``."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be an integer from {lo} to {hi}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer from {lo} to {hi}, got {value}")
        return value

    parse.__name__ = f"integer {lo}..{hi}"
    return parse


def float_in(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[lo, hi]`` (``lo_open``/``hi_open`` exclude the ends)."""
    span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be a number in {span}, got {text!r}") from None
        ok = (
            math.isfinite(value)
            and (lo < value if lo_open else lo <= value)
            and (value < hi if hi_open else value <= hi)
        )
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a finite number in {span}, got {text}")
        return value

    parse.__name__ = f"number in {span}"
    return parse


SIZE = int_in(8, 4096)  # image side in pixels
BATCH = int_in(1, 4096)
THREADS = int_in(1, 1024)
COUNT = int_in(1, 1_000_000)  # runs, rounds, trials, epochs, images: at least one
COUNT0 = int_in(0, 1_000_000)  # warm-up runs, optional epochs: zero allowed
SEED = int_in(0, 2**32 - 1)
OPSET = int_in(7, 30)
FRACTION_OPEN = float_in(0.0, 1.0, lo_open=True, hi_open=True)  # a pruning ratio
FRACTION = float_in(0.0, 1.0, lo_open=True)  # a share to keep: (0, 1]
LEARNING_RATE = float_in(0.0, 10.0, lo_open=True)
NONNEGATIVE = float_in(0.0, 1e9)  # weights, 0 = none constraints
POSITIVE = float_in(0.0, 1e9, lo_open=True)
SECONDS = float_in(0.0, 7 * 86400.0, lo_open=True)  # timeouts: finite, at most a week


def add_arch(p: argparse.ArgumentParser, *, default: str | None = "paper") -> None:
    p.add_argument(
        "--arch",
        default=default,
        help="a preset (paper, paper-figure, unext) or an RTSegConfig JSON file (default: %(default)s)",
    )


def add_data(p: argparse.ArgumentParser, *, default: str = "synthetic") -> None:
    p.add_argument(
        "--data",
        default=default,
        help="dataset: 'synthetic' (built-in phantom; 'synthetic:N' for N images), 'jnu-ifm:PATH' or "
        "'psfhs:PATH' (default: %(default)s)",
    )


def add_size(p: argparse.ArgumentParser, default: int = 256) -> None:
    p.add_argument("--size", type=SIZE, default=default, help="input height and width in pixels (default: %(default)s)")


def add_seed(p: argparse.ArgumentParser, *, default: int = 0) -> None:
    p.add_argument("--seed", type=SEED, default=default, help="random seed (default: %(default)s)")


def add_device(p: argparse.ArgumentParser, *, default: str = "auto") -> None:
    p.add_argument(
        "--device", default=default, help="auto (CUDA when present), cpu, cuda or cuda:N (default: %(default)s)"
    )


def add_threads(p: argparse.ArgumentParser, flag: str = "--threads") -> None:
    """PyTorch CPU threads; unset means the suite's thread policy (rtseg_core._threads)."""
    from rtseg_core import THREADS_HELP

    p.add_argument(flag, type=THREADS, default=None, metavar="N", help=THREADS_HELP)


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


def emit(json_target: str | None, payload: dict, show: Callable[[], None], *, what: str = "report") -> None:
    """A verb's output with :func:`add_json_out`: ``-`` prints only the JSON (for pipes); otherwise
    ``show()`` prints the human form and, with a path, the JSON is also written there (atomically)."""
    if json_target == "-":
        write_json_out("-", payload)
        return
    show()
    if json_target:
        write_json_out(json_target, payload)
        print(f"{what} written to {json_target}")


def overwrite_help(option: str) -> str:
    """The one meaning of ``--overwrite`` (issue 23), said the same way on every verb."""
    return (
        f"let {option} take over another verb's output; only files its manifest lists are ever replaced, never "
        "a folder holding files the suite did not write or an input of this run"
    )


# -- what a run reads (issue 23) ---------------------------------------------------------------
# No output, file or folder, may name or replace a file the run reads. These are the options that
# name one; each verb lists its own (`run_inputs(args, "checkpoint", "data")`) and checks its
# outputs against them with rtseg_core.check_file_output / check_output_dir before any work.
SSH_FILES = ("key", "ssh_config", "known_hosts")


def run_inputs(args: argparse.Namespace, *names: str) -> list[str]:
    """The files and folders that the options ``names`` of ``args`` make this run read.

    ``data``: the dataset folder of ``--data``, else (with ``--checkpoint``) that of the dataset
    the checkpoint was trained on, read from its training config; ``proxy_data``: bench's.
    ``target``/``latency_target``: the table of ``predict:TABLE``. Any other name: the path the option gives (a list for
    ``--compare``, ``--arch`` in latency-table), when something is there.
    """
    import os

    from rtseg_core import dataset_path

    found: list[str] = []
    for name in names:
        value = getattr(args, name, None)
        if name in ("data", "proxy_data"):
            checkpoint = getattr(args, "checkpoint", None)
            if name == "data" and value is None and checkpoint and os.path.isfile(checkpoint):  # else: missing
                value = checkpoint_data(checkpoint)
            found.append(dataset_path(value))
        elif name in ("target", "latency_target"):
            if isinstance(value, str) and value.startswith("predict:"):
                found.append(value.partition(":")[2])
        else:
            for path in value if isinstance(value, (list, tuple)) else [value]:
                if path and os.path.lexists(os.path.expanduser(str(path))):
                    found.append(os.path.expanduser(str(path)))
    return [p for p in found if p]


def check_file_outputs(args: argparse.Namespace, outputs: dict[str, object], *names: str) -> None:
    """:func:`rtseg_core.check_file_output` for every file option given (``{"--json": args.json}``)
    against :func:`run_inputs` of ``names``; when none is given (or only ``-``), nothing is read."""
    given = {option: path for option, path in outputs.items() if path is not None and str(path) != "-"}
    if not given:
        return
    from rtseg_core import check_file_output

    inputs = run_inputs(args, *names)
    for option, path in given.items():
        check_file_output(path, inputs, option=option)


def checkpoint_data(checkpoint: str) -> str:
    """The ``--data`` a checkpoint was trained on (its ``meta["train"]``; a bad checkpoint is the
    ConfigError the verb would raise a moment later)."""
    from models import load_checkpoint
    from segmentation import load_train_config

    return load_train_config(load_checkpoint(checkpoint).meta, source=str(checkpoint)).data


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
    """Options of an ``ssh://[user@]host[:port]`` target (a Jetson): keys, host-key trust, timeouts, tools."""
    ssh = p.add_argument_group("SSH target (--target ssh://user@host[:port] or ssh://ALIAS from your ssh_config)")
    ssh.add_argument(
        "--ssh-config",
        metavar="FILE",
        help="OpenSSH client config for Host aliases, User, Port, IdentityFile, ProxyJump "
        "(default: $RTSEG_SSH_CONFIG, else ~/.ssh/config)",
    )
    ssh.add_argument("--key", metavar="FILE", help="private key file (default: ~/.ssh keys and the SSH agent)")
    ssh.add_argument("--known-hosts", metavar="FILE", default="~/.ssh/known_hosts", help="(default: %(default)s)")
    ssh.add_argument(
        "--accept-new-host-key", action="store_true", help="trust and record a host not yet in known_hosts"
    )
    ssh.add_argument("--connect-timeout", type=SECONDS, default=10.0, help="seconds (default: %(default)s)")
    ssh.add_argument(
        "--command-timeout", type=SECONDS, default=600.0, help="seconds per remote command (default: %(default)s)"
    )
    ssh.add_argument(
        "--stall-timeout",
        type=SECONDS,
        default=60.0,
        help="seconds an upload may make no progress before the device counts as gone (default: %(default)s)",
    )
    ssh.add_argument("--remote-python", default="python3", help="the device's Python >= 3.6 (default: %(default)s)")
    ssh.add_argument("--remote-tmpdir", help="parent of the remote temporary directory (default: the device's TMPDIR)")
    ssh.add_argument("--trtexec", metavar="PATH", help="trtexec on the device (default: PATH, /usr/src/tensorrt/bin)")
    ssh.add_argument("--tegrastats", metavar="PATH", help="tegrastats on the device (default: found on PATH)")
    ssh.add_argument(
        "--tegrastats-interval", type=int_in(10, 10000), default=100, help="power sampling period in ms (default: 100)"
    )
    ssh.add_argument(
        "--remote-backend",
        choices=("auto", "onnxruntime", "trtexec"),
        default="auto",
        help="runtime on the device (default: %(default)s = trtexec if present, else onnxruntime)",
    )


def timing_defaults() -> TimingOptions:
    """``profiling.TimingOptions()``: the one owner of the timing defaults (importing it loads no torch)."""
    from profiling import TimingOptions

    return TimingOptions()


def ssh_options_from(args: argparse.Namespace) -> SSHOptions | None:
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
        stall_timeout=args.stall_timeout,
        ssh_config=args.ssh_config,
    )
