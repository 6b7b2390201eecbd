"""ONNX Runtime sessions made the same way for export checks, latency and benchmarks.

``onnxruntime`` is imported lazily so that counting and the other verbs do not pay for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtseg_core import ProfilingError, check_threads


def ort_providers(*, use_gpu: bool = True) -> list[str]:
    """CUDAExecutionProvider first when this onnxruntime build has it (and ``use_gpu``), then the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = []
    if use_gpu and "CUDAExecutionProvider" in available:
        providers.append("CUDAExecutionProvider")
    providers.append("CPUExecutionProvider")
    return providers


def make_session(
    model: str | os.PathLike | bytes,
    *,
    threads: int = 1,
    providers: list[str] | None = None,
    spin: bool = True,
    optimized_path: str | os.PathLike | None = None,
):
    """An inference session with the suite's fixed options.

    intra-op threads = ``threads``, inter-op threads 1, sequential execution and every graph
    optimisation (ORT_ENABLE_ALL, which also folds BatchNormalization into Conv). ``spin=False``
    stops idle intra-op threads from busy-waiting (for loops that alternate runtimes). ``model`` is
    a path or the serialised bytes. ``optimized_path``: also write the graph ONNX Runtime executes
    after these optimisations there (what an INT8 graph report counts). Raises
    :class:`ProfilingError` naming the file when ORT cannot load it.
    """
    import onnxruntime as ort

    check_threads(threads, source="onnxruntime intra-op threads")  # every local session: the last check
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    opts.log_severity_level = 3  # errors only: ORT's warnings about unused initialisers are noise here
    where = "<in-memory model>" if isinstance(model, bytes) else str(Path(model))
    try:
        arg = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(arg, sess_options=opts, providers=providers or ort_providers())
    except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, NoSuchFile ...)
        raise ProfilingError(f"{where}: ONNX Runtime cannot load the model ({str(exc)[:300]})") from None


def session_input(session) -> tuple[str, type]:
    """Name and numpy dtype (float16 or float32) of a session's first input, for building its feed."""
    import numpy as np

    inp = session.get_inputs()[0]
    return inp.name, (np.float16 if inp.type == "tensor(float16)" else np.float32)
