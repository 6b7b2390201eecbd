"""Local latency: ONNX Runtime sessions and PyTorch eager, timed the same way on this machine.

What is timed: one forward pass of one fixed N(0, 1) batch, ``warmup`` untimed passes first,
then ``runs`` passes each timed alone with ``time.perf_counter_ns``. ONNX Runtime: one
``session.run`` (host-to-device copies included when the CUDA provider runs it). PyTorch: one
``model(x)`` under ``torch.inference_mode`` with ``torch.set_num_threads(threads)`` (restored
afterwards), followed by ``torch.cuda.synchronize`` on a GPU. Statistics come from
:func:`profiling._stats.summarize_times`, shared with the remote profiler.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from profiling._env import describe_device, describe_environment
from profiling._records import LatencyRecord
from profiling._stats import summarize_times
from rtseg_core import ProfilingError, check_threads, resolve_device, torch_threads

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class LatencyConfig:
    """Timing settings shared by every local backend.

    ``threads``: intra-op threads (ONNX Runtime) and ``torch.set_num_threads`` (PyTorch).
    ``warmup``/``runs``: untimed and timed forward passes. ``channels=None`` takes the model's.
    ``device`` applies to PyTorch (``auto`` = CUDA when present); ONNX Runtime uses the CUDA
    provider when its build has one unless ``ort_gpu`` is False.
    """

    batch: int = 1
    height: int = 256
    width: int = 256
    channels: int | None = None
    threads: int = 1
    warmup: int = 10
    runs: int = 50
    seed: int = 0
    device: str = "auto"
    ort_gpu: bool = True
    progress: bool = False

    def __post_init__(self) -> None:
        for name, low in (("batch", 1), ("height", 1), ("width", 1), ("threads", 1), ("runs", 1), ("warmup", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ProfilingError(f"LatencyConfig.{name}: must be an integer >= {low}, got {value!r}")
        check_threads(self.threads, source="LatencyConfig.threads (--threads)")  # local runs: this machine's cores


def time_calls(
    fn: Callable[[], object],
    *,
    warmup: int,
    runs: int,
    sync: Callable[[], None] | None = None,
    progress: bool = False,
    desc: str = "timing",
) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times timed; returns milliseconds per call."""
    from tqdm.auto import tqdm

    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in tqdm(range(runs), desc=desc, unit="run", disable=not progress, leave=False):
        start = time.perf_counter_ns()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def onnx_input_shape(session) -> tuple[str, list[int | str | None]]:
    """Name and shape (ints, or a name/None for a dynamic axis) of the session's first input."""
    inp = session.get_inputs()[0]
    return inp.name, list(inp.shape)


def onnx_precision(path: str | Path) -> str:
    """``int8`` if the graph holds quantized ops, ``fp16`` if its input is float16, else ``fp32``."""
    from profiling._onnx_input import read_onnx_input

    return read_onnx_input(path).precision


def _resolve_shape(declared: list, config: LatencyConfig, where: str) -> tuple[int, int, int, int]:
    """The N, C, H, W to feed: fixed ONNX dims must agree with the config, dynamic ones take it."""
    want = [config.batch, config.channels, config.height, config.width]
    names = ("batch", "channels", "height", "width")
    shape = []
    for i, (dim, wanted) in enumerate(zip(declared, want)):
        if isinstance(dim, int) and dim > 0:
            if wanted is not None and wanted != dim:
                raise ProfilingError(
                    f"{where}: the model's input {names[i]} is fixed at {dim}, but {wanted} was asked for "
                    f"(use {dim}, or export with --dynamic)"
                )
            shape.append(dim)
        elif wanted is None:
            raise ProfilingError(f"{where}: the model's input {names[i]} is dynamic; give it explicitly")
        else:
            shape.append(int(wanted))
    if len(shape) != 4:
        raise ProfilingError(f"{where}: expected a 4-D (N, C, H, W) input, the model declares {declared}")
    return tuple(shape)  # type: ignore[return-value]


def measure_onnxruntime(
    onnx_path: str | Path,
    config: LatencyConfig = LatencyConfig(),
    *,
    model_name: str | None = None,
    precision: str | None = None,
    target: str = "local",
) -> LatencyRecord:
    """Time ``onnx_path`` with ONNX Runtime on this machine (see the module docstring).

    Session: intra-op threads = ``config.threads``, inter-op 1, sequential, ORT_ENABLE_ALL.
    ``precision`` labels the record; by default it is read from the graph (int8 if it holds
    quantize/dequantize ops, fp16 if the input is float16, else fp32).
    """
    from profiling._ort import make_session, ort_providers, session_input

    path = Path(onnx_path)
    if not path.is_file():
        raise ProfilingError(f"{path}: ONNX file not found")
    session = make_session(path, threads=config.threads, providers=ort_providers(use_gpu=config.ort_gpu))
    name, declared = onnx_input_shape(session)
    shape = _resolve_shape(declared, config, str(path))
    precision = precision or onnx_precision(path)
    dtype = session_input(session)[1]
    x = np.random.default_rng(config.seed).standard_normal(shape).astype(dtype)
    feed = {name: x}
    provider = session.get_providers()[0]
    log.debug(
        "timing onnxruntime (%s): %d warm-up + %d runs at %s, %d thread(s)",
        provider,
        config.warmup,
        config.runs,
        "x".join(map(str, shape)),
        config.threads,
    )
    times = time_calls(
        lambda: session.run(None, feed),
        warmup=config.warmup,
        runs=config.runs,
        progress=config.progress,
        desc=f"onnxruntime {path.name}",
    )
    stats = summarize_times(times, batch=shape[0])
    env = describe_environment(threads=config.threads)
    env["onnxruntime_providers"] = session.get_providers()
    return LatencyRecord(
        model=model_name or str(path),
        target=target,
        kind="measured",
        backend="onnxruntime",
        provider=provider,
        precision=precision,
        device=describe_device(gpu=provider == "CUDAExecutionProvider"),
        batch=shape[0],
        channels=shape[1],
        height=shape[2],
        width=shape[3],
        threads=config.threads,
        warmup=config.warmup,
        runs=config.runs,
        host=env["hostname"],
        environment=env,
        notes=(
            f"ONNX Runtime {env['onnxruntime']}, {provider}, intra-op {config.threads}, inter-op 1, sequential, "
            "graph optimisation ALL; one session.run per timed run on a fixed N(0,1) input; "
            f"warm-up {config.warmup} runs (iterations)"
        ),
        timestamp=_now(),
        **stats,
    )


def measure_pytorch(
    model: nn.Module,
    config: LatencyConfig = LatencyConfig(),
    *,
    model_name: str = "model",
    precision: str = "fp32",
    target: str = "local",
) -> LatencyRecord:
    """Time PyTorch eager inference of ``model`` on this machine (see the module docstring).

    The model is copied, put in eval mode and its DSConv layers frozen (the deployed weights);
    BatchNorm is not folded (eager as users run it). ``precision``: ``fp32``, or ``fp16`` on CUDA.
    """
    forward, eager = eager_runner(model, config, precision=precision, model_name=model_name)
    log.debug(
        "timing pytorch eager (%s): %d warm-up + %d runs at %s, %d thread(s)",
        eager.device,
        config.warmup,
        config.runs,
        f"{config.batch}x{eager.channels}x{config.height}x{config.width}",
        config.threads,
    )
    try:
        with torch_threads(config.threads):
            times = time_calls(
                forward, warmup=config.warmup, runs=config.runs, progress=config.progress, desc=f"pytorch {model_name}"
            )
    except RuntimeError as exc:
        raise ProfilingError(f"{model_name}: PyTorch forward failed on {eager.device} ({str(exc)[:300]})") from None
    return eager_record(eager, config, times, model_name=model_name, target=target, how=f"warm-up {config.warmup} runs")


@dataclass(frozen=True)
class EagerModel:
    """What an eager runner runs: the device, input channels and precision (for its record)."""

    device: torch.device
    channels: int
    precision: str
    synchronized: bool


def eager_runner(
    model: nn.Module, config: LatencyConfig, *, precision: str = "fp32", model_name: str = "model"
) -> tuple[Callable[[], None], EagerModel]:
    """One forward pass of a frozen eval copy of ``model`` on a fixed N(0, 1) batch, as a callable.

    The call runs under ``torch.inference_mode`` and ends with ``cuda.synchronize`` on a GPU;
    threads are the caller's (``torch_threads``).
    """
    from models import freeze_dsconv

    if precision not in ("fp32", "fp16"):
        raise ProfilingError(f"pytorch: precision {precision!r} is not timed in eager mode (use fp32, or fp16 on CUDA)")
    device = resolve_device(config.device)
    if precision == "fp16" and device.type != "cuda":
        raise ProfilingError("pytorch: fp16 eager inference needs a CUDA device (this run uses the CPU)")
    channels = config.channels or getattr(getattr(model, "config", None), "in_channels", None)
    if channels is None:
        raise ProfilingError(f"{model_name}: cannot tell the input channels; set LatencyConfig.channels")
    work = freeze_dsconv(copy.deepcopy(model).eval()).to(device)
    dtype = torch.float16 if precision == "fp16" else torch.float32
    work = work.to(dtype)
    gen = torch.Generator().manual_seed(config.seed)
    x = torch.randn(config.batch, channels, config.height, config.width, generator=gen).to(device=device, dtype=dtype)
    cuda = device.type == "cuda"

    def forward() -> None:
        with torch.inference_mode():
            work(x)
        if cuda:
            torch.cuda.synchronize(device)

    return forward, EagerModel(device, int(channels), precision, cuda)


def eager_record(
    eager: EagerModel, config: LatencyConfig, times: list[float], *, model_name: str, target: str, how: str
) -> LatencyRecord:
    """The MEASURED record of an eager model's timed runs (``how``: the warm-up and loop, for the notes)."""
    stats = summarize_times(times, batch=config.batch)
    env = describe_environment(threads=config.threads)
    return LatencyRecord(
        model=model_name,
        target=target,
        kind="measured",
        backend="pytorch",
        provider=f"eager ({eager.device.type})",
        precision=eager.precision,
        device=describe_device(gpu=eager.device.type == "cuda"),
        batch=config.batch,
        channels=eager.channels,
        height=config.height,
        width=config.width,
        threads=config.threads,
        warmup=config.warmup,
        runs=len(times),
        host=env["hostname"],
        environment=env,
        notes=(
            f"PyTorch {torch.__version__} eager, inference_mode, set_num_threads({config.threads}); DSConv frozen, "
            "BN not folded; one model(x) per timed run"
            + (" followed by cuda.synchronize" if eager.synchronized else "")
            + f"; {how}"
        ),
        timestamp=_now(),
        **stats,
    )
