"""Ultrasound data (JNU-IFM, PSFHS, a synthetic transperineal phantom), training, metrics and AoP."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg_core import lazy_exports

if TYPE_CHECKING:
    from segmentation._aop import AoPMeasurement, angle_of_progression, draw_aop_masks, measure_aop
    from segmentation._check import DataCheck, check_dataset
    from segmentation._config import TrainConfig, load_train_config
    from segmentation._data import (
        CLASS_NAMES,
        REFERENCE_SIZE,
        DataSpec,
        SegmentationDataset,
        load_split,
        split_groups,
    )
    from segmentation._evaluate import (
        EvalResult,
        Predict,
        evaluate,
        evaluate_checkpoint,
        evaluate_model,
        resize_prediction,
    )
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
        HeadlineMetrics,
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
        cosine_lr,
        seed_everything,
        train,
        validation_dice,
    )

__all__ = [
    "cosine_lr",
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
    "HeadlineMetrics",
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
    "resize_prediction",
    "REFERENCE_SIZE",
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

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
