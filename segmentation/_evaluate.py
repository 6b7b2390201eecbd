"""Evaluation of a model or checkpoint on a dataset split: per-class metrics, |dAoP|, per-image rows.

Every evaluation scores at one reference resolution (``reference_size``, default
:data:`~segmentation.REFERENCE_SIZE` = 256): the model runs at its own input size, its class
probabilities are resized to the reference size and the masks are the labels at that size, so a
model deployed at 192 x 192 and one at 256 x 256 are scored on the same masks (Dice, and ASD /
HD95 in pixels of the reference size). ``reference_size=None`` scores at the input size (the
training loop's validation Dice does so: it only ranks epochs of one model).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from models import load_model
from rtseg_core import ConfigError, atomic_write_json, atomic_write_text, resolve_device
from segmentation._check import check_dataset
from segmentation._config import load_train_config
from segmentation._data import REFERENCE_SIZE, load_split
from segmentation._metrics import EvalSummary, MetricAccumulator, format_table

log = logging.getLogger(__name__)


class NonFiniteOutputs(ConfigError):
    """The model's outputs are NaN or infinite: the run failed on a broken model (exit 1), not on an
    option; still a ConfigError for the code that catches a bad model that way."""

    exit_code = 1


Predict = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]


@dataclass
class EvalResult:
    """``summary`` per structure and their mean (:class:`EvalSummary`); ``rows`` one dict per image.

    ``size``: the model's input size; ``reference_size``: the size of the masks the metrics were
    computed on (predictions resized to it; distances in its pixels).
    """

    summary: EvalSummary
    rows: list[dict[str, Any]]
    data: str
    split: str
    size: int
    reference_size: int
    distance_unit: str = "px"

    @property
    def dice(self) -> float | None:
        """Mean foreground Dice in [0, 1] (``None`` for an empty split)."""
        return self.summary.dice

    def table(self) -> str:
        return format_table(self.summary, distance_unit=self.distance_unit)

    def write(self, json_path: str | Path | None = None, csv_path: str | Path | None = None) -> None:
        if json_path is not None:
            atomic_write_json(
                json_path,
                {**self.summary.to_dict(), "data": self.data, "split": self.split, "size": self.size,
                 "reference_size": self.reference_size, "distance_unit": self.distance_unit},
            )  # fmt: skip
        if csv_path is not None and self.rows:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)
            atomic_write_text(csv_path, buf.getvalue())


@torch.no_grad()
def evaluate(
    predict: Predict,
    data: str,
    *,
    split: str = "test",
    size: int = 256,
    seed: int = 0,
    batch_size: int = 16,
    frames: str = "ps+fh",
    progress: bool = True,
    reference_size: int | None = REFERENCE_SIZE,
) -> EvalResult:
    """Run ``predict(images [B, 1, H, W] float32) -> logits [B, C, H, W]`` (any runtime) over a split.

    Images go in at ``size``; the metrics are computed at ``reference_size`` (``None``: ``size``)
    against the labels at that size, the prediction resized to it (:func:`resize_prediction`).
    Every file of the split is read and checked (:func:`check_dataset`) before the first prediction.
    """
    reference = size if reference_size is None else reference_size
    ds = load_split(data, split, size=size, seed=seed, augment=False, frames=frames, label_size=reference)
    check_dataset(ds, progress=progress)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    acc = MetricAccumulator()
    for batch in tqdm(loader, desc=f"evaluate {split}", disable=not progress, leave=False, unit="batch"):
        logits = torch.as_tensor(predict(batch["image"]))
        if not torch.isfinite(logits).all():
            # argmax of NaN logits is class 0 everywhere: a "Dice" computed from it would be a lie
            bad = [str(i) for i, row in zip(batch["id"], logits) if not torch.isfinite(row).all()]
            raise NonFiniteOutputs(
                f"the model's outputs are not finite (NaN or inf) on {len(bad)} image(s) of the {split} split "
                f"({', '.join(bad[:3])}); the model is broken (diverged weights?) and is not evaluated"
            )
        acc.update(resize_prediction(logits, reference), batch["mask"], batch["id"])
    return EvalResult(
        summary=dataclasses.replace(acc.summary(), reference_size=reference), rows=acc.rows(), data=str(data),
        split=split, size=size, reference_size=reference, distance_unit=acc.distance_unit,
    )  # fmt: skip


def resize_prediction(logits: torch.Tensor, size: int) -> torch.Tensor:
    """Class map ``[B, size, size]`` (int64) of ``logits [B, C, h, w]`` predicted at another (or the same) size.

    At the same size: the argmax of the logits. Otherwise the softmax probabilities are resized
    bilinearly (align_corners=False, as the network's own decoder resizes) and the argmax taken
    there: each output pixel gets a weighted mean of its neighbours' class distributions, so a
    boundary lands where the interpolated probabilities cross, between input pixels. Resizing the
    argmax (nearest) instead would give staircase boundaries of the input's pixel size (a 128-px
    model would lose Dice to blockiness alone); resizing the logits would let one neighbour's large
    logit outvote the others, which probabilities (bounded, summing to 1) cannot.
    """
    logits = logits.float()
    if tuple(logits.shape[-2:]) == (size, size):
        return logits.argmax(1)
    probs = F.interpolate(torch.softmax(logits, dim=1), size=(size, size), mode="bilinear", align_corners=False)
    return probs.argmax(1)


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    data: str,
    *,
    split: str = "test",
    size: int = 256,
    seed: int = 0,
    batch_size: int = 16,
    device: str = "auto",
    frames: str = "ps+fh",
    progress: bool = True,
    reference_size: int | None = REFERENCE_SIZE,
) -> EvalResult:
    """:func:`evaluate` with a PyTorch model (put in eval mode on ``device``)."""
    dev = resolve_device(device)
    model = model.to(dev).eval()

    def predict(x: torch.Tensor) -> torch.Tensor:
        return model(x.to(dev)).cpu()

    return evaluate(
        predict, data, split=split, size=size, seed=seed, batch_size=batch_size, frames=frames, progress=progress,
        reference_size=reference_size,
    )  # fmt: skip


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | None = None,
    *,
    split: str = "test",
    size: int | None = None,
    seed: int | None = None,
    **kwargs,
) -> EvalResult:
    """Evaluate a checkpoint; data, size and seed default to those it was trained with (its data seed).

    The metrics are at ``reference_size`` (a keyword; default :data:`REFERENCE_SIZE`), whatever the size.
    """
    model, ckpt = load_model(checkpoint)
    trained = load_train_config(ckpt.meta, source=str(checkpoint))
    return evaluate_model(
        model,
        data or trained.data,
        split=split,
        size=size or (ckpt.meta or {}).get("input_size") or trained.size,  # a resized model runs at its input_size
        seed=(trained.seed if trained.data_seed is None else trained.data_seed) if seed is None else seed,
        **kwargs,
    )
