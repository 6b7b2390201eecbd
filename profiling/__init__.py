"""Cost and latency of RTSeg-Net family models: counts, ONNX export, local timing, Jetson profiling and estimates.

- :func:`profile_model` is the one-call API (``rtseg-nas profile``): counts plus latency here,
  on a device over SSH, or as a labelled Jetson Nano estimate.
- :func:`count_costs` gives parameters (true and the paper's thop convention), MACs (fvcore,
  thop with and without a DSConv rule) and peak activation memory as a :class:`CostRecord`.
- :func:`export_onnx` writes a parity-checked ONNX file (DSConv frozen, BN folded).
- :func:`measure_onnxruntime` / :func:`measure_pytorch` time locally; :func:`profile_remote`
  times on an SSH device; :func:`estimate_latency` and :class:`CalibratedEstimator` estimate.
- :func:`time_graphs` / :func:`time_alternating` (:class:`TimingOptions`) are the one timer of every
  comparison: rotated alternating rounds, medians and paired-round speed-up intervals
  (:func:`speedup`); :func:`time_on_device` the same over SSH. :func:`bench_variants` /
  :func:`run_bench` compare runtimes with it.
- ``--target`` picks backends from one table (:data:`TARGETS`, :func:`resolve_backends`): local
  ONNX Runtime / PyTorch, an SSH device, the roofline estimate, or ``predict:TABLE``, the
  kernel-level predictor (:func:`build_table`, :class:`LatencyPredictor`, :func:`bench_predictor`);
  :class:`SubnetLatency` predicts family members from a table with kernels from the config
  (:class:`SegmentKernels`: each distinct segment exported once), timing missing kernels on demand.
- :func:`read_onnx_input` is the one reader of an ONNX file's image input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg_core import lazy_exports

if TYPE_CHECKING:  # the public names; loaded on first use (rtseg_core.lazy_exports)
    from profiling._backends import (
        TARGETS,
        LatencyBackend,
        LatencyRequest,
        check_target,
        load_predictor,
        resolve_backends,
        target_kind,
    )
    from profiling._bench import (
        BenchConfig,
        BenchResult,
        Variant,
        VariantResult,
        bench_variants,
        ort_variant,
        pytorch_variant,
        run_bench,
    )
    from profiling._counts import (
        CostRecord,
        count_costs,
        count_parameters_paper_convention,
        peak_activation_memory,
    )
    from profiling._env import describe_device, describe_environment
    from profiling._estimate import (
        JETSON_NANO,
        CalibratedEstimator,
        DeviceSpec,
        KernelEstimate,
        RooflineEstimate,
        estimate_latency,
        estimate_roofline,
    )
    from profiling._export import (
        ExportConfig,
        ExportResult,
        check_onnx,
        export_model,
        export_onnx,
        fold_batchnorm,
        prepare_for_export,
    )
    from profiling._kernels import Decomposition, Kernel, decompose_onnx
    from profiling._latency import LatencyConfig, measure_onnxruntime, measure_pytorch, time_calls, torch_threads
    from profiling._onnx_input import OnnxInputInfo, read_onnx_input
    from profiling._ort import make_session, session_input
    from profiling._predict_bench import PREDICTOR_BENCH_ROUNDS, PredictorBenchResult, bench_predictor
    from profiling._predictor import MIN_CALIBRATION, LatencyPredictor
    from profiling._profile import ProfileReport, profile_model
    from profiling._records import (
        ESTIMATE_TARGET,
        ESTIMATED,
        KINDS,
        LOCAL_OPSET,
        MEASURED,
        PREDICT_PREFIX,
        PREDICTED,
        LatencyRecord,
    )
    from profiling._remote import probe_remote, profile_remote
    from profiling._segment_kernels import MemberKernels, SegmentKernels
    from profiling._source import ModelSource, load_source
    from profiling._ssh import SSHOptions, SSHTarget
    from profiling._stats import median_interval, speedup_interval, summarize_times
    from profiling._subnet_latency import SubnetCost, SubnetLatency
    from profiling._table import LatencyTable, TableKey
    from profiling._table_build import LocalTimer, SSHTimer, build_table
    from profiling._timing import (
        Samples,
        Speedup,
        TimedResult,
        TimingOptions,
        speedup,
        time_alternating,
        time_graphs,
        time_on_device,
    )
    from profiling._trace import ForwardTrace, TracedOp, trace_forward

__all__ = [
    "MIN_CALIBRATION",
    "LOCAL_OPSET",
    "export_model",
    "session_input",
    "target_kind",
    "ESTIMATED",
    "KINDS",
    "ESTIMATE_TARGET",
    "MEASURED",
    "PREDICTED",
    "PREDICT_PREFIX",
    "TARGETS",
    "Decomposition",
    "Kernel",
    "LatencyBackend",
    "LatencyPredictor",
    "LatencyRequest",
    "LatencyTable",
    "OnnxInputInfo",
    "PredictorBenchResult",
    "TableKey",
    "bench_predictor",
    "build_table",
    "check_target",
    "decompose_onnx",
    "read_onnx_input",
    "resolve_backends",
    "JETSON_NANO",
    "BenchConfig",
    "BenchResult",
    "CalibratedEstimator",
    "CostRecord",
    "DeviceSpec",
    "ExportConfig",
    "ExportResult",
    "ForwardTrace",
    "KernelEstimate",
    "LatencyConfig",
    "LatencyRecord",
    "ModelSource",
    "ProfileReport",
    "RooflineEstimate",
    "SSHOptions",
    "SSHTarget",
    "TracedOp",
    "Variant",
    "VariantResult",
    "bench_variants",
    "check_onnx",
    "count_costs",
    "count_parameters_paper_convention",
    "describe_device",
    "describe_environment",
    "estimate_latency",
    "estimate_roofline",
    "export_onnx",
    "fold_batchnorm",
    "load_source",
    "make_session",
    "measure_onnxruntime",
    "measure_pytorch",
    "ort_variant",
    "peak_activation_memory",
    "prepare_for_export",
    "profile_model",
    "probe_remote",
    "profile_remote",
    "pytorch_variant",
    "run_bench",
    "speedup_interval",
    "median_interval",
    "summarize_times",
    "time_calls",
    "torch_threads",
    "trace_forward",
    "Samples",
    "Speedup",
    "TimedResult",
    "TimingOptions",
    "speedup",
    "time_alternating",
    "time_graphs",
    "time_on_device",
    "LocalTimer",
    "SSHTimer",
    "load_predictor",
    "PREDICTOR_BENCH_ROUNDS",
    "MemberKernels",
    "SegmentKernels",
    "SubnetCost",
    "SubnetLatency",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
