"""Deploy at a smaller input: fine-tune a trained checkpoint at another input size, export it there.

A smaller input is a compression in its own right: latency falls roughly with the pixel count
(192 x 192 has 56 % of 256 x 256's pixels) and no weight changes shape. The network accepts any
input of at least 16 px (the decoder resizes to each skip's size; ``tests/compress/test_resize.py``
runs it at 16, 33, 48, 60 and 72); deployment sizes are multiples of 32 (exact halving in the five
stride-2 stages) and the fine-tune runs at the training size scaled by ``deploy / latency size``
(``rtseg_core.scaled_size``: a 96-px training deployed at 192 of 256 is fine-tuned at 72 px).

Output folder (staged and renamed, as prune's)::

    OUT/checkpoint.pt   the parent's config and (pruned) weights after the fine-tune; meta["input_size"]
                        is the size it now runs at (``evaluate --checkpoint`` uses it), meta["deploy_size"]
                        the deployment size it stands for
    OUT/model.onnx      exported at the input size (the graph whose Dice is reported)
    OUT/resize.json     :class:`ResizeReport`: sizes, Dice at the reference size before and after,
                        fine-tune log, the loss used, parent-vs-resized latency when asked

Distillation hook: the fine-tune uses the task loss only. When compress's fine-tune accepts a
teacher (issue 20, distillation), the parent at its own input size is the teacher here; the
report's ``loss`` says which loss was used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress._files import output_dir
from compress._finetune import FinetuneSpec, finetune
from compress._measure import LatencyComparison, compare_latency
from compress._pipeline import _export, compression_inputs, load_for_compression
from rtseg_core import (
    DEPLOYMENT_SIZE,
    CompressionOptionError,
    Record,
    atomic_write_json,
    check_deploy_size,
    check_output_dir,
    scaled_size,
    scratch_dir,
)

if TYPE_CHECKING:
    from profiling import TimingOptions

log = logging.getLogger(__name__)

RESIZE_JSON = "resize.json"
TASK_LOSS = "task: Dice + CE with deep supervision (no distillation)"


def check_input_size(size: Any, *, option: str = "--input-size") -> int:
    """``size`` if it is a deployment size (``rtseg_core.check_deploy_size``), else a CompressionOptionError."""
    return check_deploy_size(size, option=option, error=CompressionOptionError)


@dataclass(frozen=True)
class ResizeReport(Record):
    """What :func:`resize_checkpoint` did. Dice: mean foreground Dice at ``reference_size`` on ``split``."""

    checkpoint: str
    onnx: str | None
    parent: str
    recipe: str  # e.g. "in72+ft3"
    data: str
    split: str
    parent_size: int  # the input size the parent ran (was trained) at
    input_size: int  # the input size it was fine-tuned and evaluated at (scaled_size of the deployment size)
    deploy_size: int  # the deployment size it stands for (timed at), a multiple of 32
    latency_size: int  # the parent's deployment size (where full-size models are timed)
    reference_size: int  # the label size Dice was computed at (segmentation.REFERENCE_SIZE)
    dice_parent: float | None  # the parent at its own size
    dice_resized: float | None  # the parent fed the smaller input, before the fine-tune
    dice_after: float | None  # after the fine-tune at the new size
    loss: str = TASK_LOSS
    finetune: list[dict] = field(default_factory=list)
    onnx_max_abs_diff: float | None = None
    notes: str = ""
    latency: LatencyComparison | None = None  # parent graph at parent_size vs this one at input_size

    def to_dict(self) -> dict[str, Any]:
        latency = self.latency.to_dict() if self.latency is not None else None
        return {**super().to_dict(), "latency": latency}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResizeReport:
        data = dict(data)
        if isinstance(data.get("latency"), dict):
            data["latency"] = LatencyComparison.from_dict(data["latency"])
        return super().from_dict(data)


def checkpoint_input_size(ckpt) -> int:
    """The input size a checkpoint runs at: ``meta["input_size"]`` after a resize, else its training size."""
    from segmentation import load_train_config

    meta = ckpt.meta or {}
    return int(meta.get("input_size") or load_train_config(meta).size)


def resize_checkpoint(
    checkpoint: str | Path,
    deploy_size: int,
    out_dir: str | Path,
    *,
    latency_size: int = DEPLOYMENT_SIZE,
    data: str | None = None,
    seed: int | None = None,
    finetune_spec: FinetuneSpec | None = None,
    evaluate: bool = True,
    split: str = "val",
    export: bool = True,
    opset: int = 17,
    overwrite: bool = False,
    stage: bool = True,
    progress: bool = True,
    timing: TimingOptions | None = None,
) -> ResizeReport:
    """Make ``checkpoint`` a model deployed at ``deploy_size`` (its parent deploys at ``latency_size``,
    or at its own ``meta["deploy_size"]`` after an earlier resize): fine-tune and evaluate it at
    ``scaled_size(parent input size, deploy_size, parent deploy size)`` (module docstring), Dice at
    the reference size; export; write ``out_dir``.

    ``timing``: also time the parent's graph at its deployment size against this one at
    ``deploy_size``, fresh exports of the same weights, in one alternating loop.
    """
    from models import Checkpoint, save_checkpoint
    from segmentation import REFERENCE_SIZE, evaluate_model, load_train_config

    check_input_size(deploy_size)
    check_input_size(latency_size, option="--latency-size")
    model, ckpt = load_for_compression(checkpoint)
    parent_deploy = int((ckpt.meta or {}).get("deploy_size") or latency_size)
    if deploy_size >= parent_deploy:
        raise CompressionOptionError(
            f"--input-size {deploy_size}: not smaller than the parent's deployment size {parent_deploy}; "
            "a resize deploys at a smaller input"
        )
    inputs = compression_inputs(checkpoint, data, ckpt)
    if stage:
        check_output_dir(out_dir, verb="resize", inputs=inputs, overwrite=overwrite)
    trained = load_train_config(ckpt.meta, source=str(checkpoint))
    data = data or trained.data
    seed = int((trained.seed if trained.data_seed is None else trained.data_seed) if seed is None else seed)
    parent_size = checkpoint_input_size(ckpt)
    input_size = scaled_size(parent_size, deploy_size, parent_deploy)
    if timing is not None and not export:
        raise CompressionOptionError("resize: timing needs the ONNX export (export=True)")

    def dice(size: int) -> float | None:
        if not evaluate:
            return None
        return evaluate_model(model, data, split=split, size=size, seed=seed, device="cpu", progress=False).dice

    dice_parent = dice(parent_size)
    dice_resized = dice(input_size)
    parent_graph = None
    if timing is not None:
        import copy

        parent_graph = copy.deepcopy(model)
    logs: list[dict] = []
    if finetune_spec is not None and finetune_spec.epochs:
        # Distillation hook: pass the parent (at parent_size) as the teacher here once finetune takes one.
        logs = finetune(model, finetune_spec.train_config(data=data, size=input_size, seed=seed), progress=progress)
    dice_after = dice(input_size) if logs else dice_resized
    recipe = f"in{deploy_size}" + (f"+ft{len(logs)}" if logs else "")
    meta = dict(ckpt.meta or {})
    meta.update({"parent": str(checkpoint), "recipe": recipe, "input_size": input_size, "deploy_size": deploy_size})
    with output_dir(out_dir, verb="resize", inputs=inputs, stage=stage, overwrite=overwrite) as tmp:
        save_checkpoint(
            Checkpoint(
                config=ckpt.config,
                state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
                pruning=ckpt.pruning,
                epoch=ckpt.epoch,
                metrics={"val_dice": dice_after} if dice_after is not None else {},
                meta=meta,
            ),
            tmp / "checkpoint.pt",
        )
        onnx_diff = latency = None
        if export:
            onnx_diff = _export(model, tmp / "model.onnx", size=input_size, opset=opset)
        if parent_graph is not None and timing is not None:
            with scratch_dir("resize") as scratch:
                reference, variant = Path(scratch) / "parent.onnx", Path(scratch) / "deployed.onnx"
                _export(parent_graph, reference, size=parent_deploy, opset=opset)
                _export(model, variant, size=deploy_size, opset=opset)
                latency = compare_latency(reference, variant, timing)
        report = ResizeReport(
            checkpoint="checkpoint.pt",
            onnx="model.onnx" if export else None,
            parent=str(checkpoint),
            recipe=recipe,
            data=data,
            split=split,
            parent_size=parent_size,
            input_size=input_size,
            deploy_size=deploy_size,
            latency_size=parent_deploy,
            reference_size=REFERENCE_SIZE,
            dice_parent=dice_parent,
            dice_resized=dice_resized,
            dice_after=dice_after,
            finetune=logs,
            onnx_max_abs_diff=onnx_diff,
            notes=(
                f"Dice: mean of PS and FH per-image Dice at the reference {REFERENCE_SIZE}x{REFERENCE_SIZE} "
                "(predictions resized to it), PyTorch eval on the CPU"
                + (
                    f"; latency: parent at {parent_deploy} px vs this at {deploy_size} px, {latency.method}"
                    if latency
                    else ""
                )  # fmt: skip
            ),
            latency=latency,
        )
        atomic_write_json(tmp / RESIZE_JSON, report.to_dict())
    log.info("resized %s: deployed at %d px (fine-tuned at %d px, parent at %d px)", checkpoint, deploy_size,
             input_size, parent_size)  # fmt: skip
    return report
