"""Where a measurement ran: CPU model, cores, OS, Python and library versions.

Every local :class:`~profiling._records.LatencyRecord` carries :func:`describe_environment` in its
``environment`` field and :func:`describe_device` as its ``device`` string, so a number never
travels without its conditions.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
from importlib import metadata
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def gpu_name() -> str | None:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def describe_device(*, gpu: bool = False) -> str:
    """One line for the ``device`` column: the GPU when ``gpu``, else CPU model and usable cores."""
    if gpu:
        name = gpu_name()
        if name:
            return name
    return f"{cpu_model()} ({usable_cores()} cores)"


def describe_environment(*, threads: int | None = None) -> dict[str, Any]:
    """A flat, JSON-ready description of this machine and the libraries that do the timing."""
    import torch

    env: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "logical_cpus": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": _version("onnxruntime"),
        "onnx": _version("onnx"),
        "numpy": _version("numpy"),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": gpu_name(),
    }
    try:  # a busy machine explains noisy numbers: record how busy it was
        env["load_average_1m"] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        env["load_average_1m"] = None
    if threads is not None:
        env["threads"] = threads
    return env
