"""Compression of RTSeg-Net family models: structured pruning (Torch-Pruning) and quantization.

Pruning: a :class:`PruneSpec` goes in, a :class:`PruneResult` comes out (:func:`prune_model`);
:func:`prune_checkpoint` adds fine-tuning, ONNX export and evaluation and writes a checkpoint
whose ``pruning`` entry :func:`replay_pruning` re-applies to a fresh build. Quantization:
:class:`QuantSpec` -> :func:`quantize_checkpoint` / :func:`quantize_onnx` -> :class:`QuantReport`.
:func:`compress_study` does either for the best trials of a search. The speed-ups that pruning and
quantization report come from :func:`compare_latency`: both graphs in one alternating loop of
the suite's one timer (``profiling.time_graphs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg_core import lazy_exports

if TYPE_CHECKING:  # the public names; loaded on first use (rtseg_core.lazy_exports)
    from compress._bench import Comparison, CompressionBenchConfig, bench_compression, format_comparisons
    from compress._finetune import FinetuneSpec, calibration_batches, finetune
    from compress._importance import IMPORTANCES, ImportanceOption, Scorer, get_importance, list_importances
    from compress._int8graph import Int8GraphReport, int8_graph_report
    from compress._measure import LatencyComparison, compare_latency
    from compress._opprofile import OpTime, profile_ops, summarize_ops
    from compress._pipeline import PruneReport, load_for_compression, prune_checkpoint
    from compress._prune import prune_model
    from compress._quantize import (
        ACTIVATION_TYPES,
        CALIBRATIONS,
        GRAPH_FORMATS,
        NANO_GPU_INT8,
        TARGETS,
        QuantFormat,
        QuantReport,
        QuantSpec,
        ort_predict,
        quantize_checkpoint,
        quantize_onnx,
    )
    from compress._resize import (
        RESIZE_JSON,
        ResizeReport,
        check_input_size,
        checkpoint_input_size,
        resize_checkpoint,
    )
    from compress._spec import PruneResult, PruneSpec
    from compress._study import compress_study, pareto_parents

__all__ = [
    "RESIZE_JSON",
    "ResizeReport",
    "check_input_size",
    "checkpoint_input_size",
    "resize_checkpoint",
    "ort_predict",
    "ACTIVATION_TYPES",
    "CALIBRATIONS",
    "GRAPH_FORMATS",
    "Comparison",
    "CompressionBenchConfig",
    "IMPORTANCES",
    "Int8GraphReport",
    "int8_graph_report",
    "NANO_GPU_INT8",
    "TARGETS",
    "FinetuneSpec",
    "ImportanceOption",
    "LatencyComparison",
    "compare_latency",
    "OpTime",
    "PruneReport",
    "PruneResult",
    "PruneSpec",
    "QuantFormat",
    "QuantReport",
    "QuantSpec",
    "Scorer",
    "bench_compression",
    "calibration_batches",
    "compress_study",
    "finetune",
    "format_comparisons",
    "get_importance",
    "list_importances",
    "load_for_compression",
    "pareto_parents",
    "profile_ops",
    "prune_checkpoint",
    "prune_model",
    "quantize_checkpoint",
    "quantize_onnx",
    "summarize_ops",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
