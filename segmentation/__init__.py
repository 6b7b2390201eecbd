"""Ultrasound data (JNU-IFM, PSFHS, a synthetic transperineal phantom), training, metrics and AoP."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module. Imported on first use, so `from segmentation import TrainConfig` (the CLI reading its
# defaults for --help) does not import PyTorch, OpenCV and SciPy.
_EXPORTS: dict[str, str] = {
    "AoPMeasurement": "segmentation._aop",
    "angle_of_progression": "segmentation._aop",
    "draw_aop_masks": "segmentation._aop",
    "measure_aop": "segmentation._aop",
    "DataCheck": "segmentation._check",
    "check_dataset": "segmentation._check",
    "TrainConfig": "segmentation._config",
    "load_train_config": "segmentation._config",
    "CLASS_NAMES": "segmentation._data",
    "DataSpec": "segmentation._data",
    "SegmentationDataset": "segmentation._data",
    "load_split": "segmentation._data",
    "split_groups": "segmentation._data",
    "EvalResult": "segmentation._evaluate",
    "Predict": "segmentation._evaluate",
    "evaluate": "segmentation._evaluate",
    "evaluate_checkpoint": "segmentation._evaluate",
    "evaluate_model": "segmentation._evaluate",
    "DatasetIndex": "segmentation._formats",
    "FRAME_LABEL_NAMES": "segmentation._formats",
    "Sample": "segmentation._formats",
    "index_jnu_ifm": "segmentation._formats",
    "index_psfhs": "segmentation._formats",
    "load_sample": "segmentation._formats",
    "parse_frames": "segmentation._formats",
    "DeepSupervisionLoss": "segmentation._losses",
    "ClassMetrics": "segmentation._metrics",
    "EvalSummary": "segmentation._metrics",
    "FOREGROUND_CLASSES": "segmentation._metrics",
    "MeanMetrics": "segmentation._metrics",
    "MetricAccumulator": "segmentation._metrics",
    "binary_metrics": "segmentation._metrics",
    "format_table": "segmentation._metrics",
    "image_diagonal": "segmentation._metrics",
    "image_metrics": "segmentation._metrics",
    "surface_distances": "segmentation._metrics",
    "make_phantom": "segmentation._phantom",
    "phantom_layout": "segmentation._phantom",
    "EpochLog": "segmentation._train",
    "StopTraining": "segmentation._train",
    "TrainResult": "segmentation._train",
    "TrainingDiverged": "segmentation._train",
    "check_training_memory": "segmentation._train",
    "seed_everything": "segmentation._train",
    "train": "segmentation._train",
    "validation_dice": "segmentation._train",
}

if TYPE_CHECKING:
    from segmentation._aop import AoPMeasurement, angle_of_progression, draw_aop_masks, measure_aop
    from segmentation._check import DataCheck, check_dataset
    from segmentation._config import TrainConfig, load_train_config
    from segmentation._data import CLASS_NAMES, DataSpec, SegmentationDataset, load_split, split_groups
    from segmentation._evaluate import EvalResult, Predict, evaluate, evaluate_checkpoint, evaluate_model
    from segmentation._formats import (
        FRAME_LABEL_NAMES,
        DatasetIndex,
        Sample,
        index_jnu_ifm,
        index_psfhs,
        load_sample,
        parse_frames,
    )
    from segmentation._losses import DeepSupervisionLoss
    from segmentation._metrics import (
        FOREGROUND_CLASSES,
        ClassMetrics,
        EvalSummary,
        MeanMetrics,
        MetricAccumulator,
        binary_metrics,
        format_table,
        image_diagonal,
        image_metrics,
        surface_distances,
    )
    from segmentation._phantom import make_phantom, phantom_layout
    from segmentation._train import (
        EpochLog,
        StopTraining,
        TrainingDiverged,
        TrainResult,
        check_training_memory,
        seed_everything,
        train,
        validation_dice,
    )

__all__ = [
    "CLASS_NAMES",
    "FOREGROUND_CLASSES",
    "FRAME_LABEL_NAMES",
    "AoPMeasurement",
    "ClassMetrics",
    "DataCheck",
    "DataSpec",
    "DatasetIndex",
    "DeepSupervisionLoss",
    "EpochLog",
    "EvalResult",
    "EvalSummary",
    "MeanMetrics",
    "MetricAccumulator",
    "Predict",
    "Sample",
    "SegmentationDataset",
    "StopTraining",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "angle_of_progression",
    "binary_metrics",
    "check_dataset",
    "check_training_memory",
    "draw_aop_masks",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_model",
    "format_table",
    "image_diagonal",
    "image_metrics",
    "index_jnu_ifm",
    "index_psfhs",
    "load_sample",
    "load_split",
    "load_train_config",
    "make_phantom",
    "measure_aop",
    "parse_frames",
    "phantom_layout",
    "seed_everything",
    "split_groups",
    "surface_distances",
    "train",
    "validation_dice",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'segmentation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
