"""``rtseg-nas prune``: checkpoint in, pruned + fine-tuned + exported + evaluated checkpoint out.

Output folder (written to a temporary sibling and renamed at the end, so a failure leaves nothing)::

    OUT/checkpoint.pt   config + pruning {"history", "spec"} + weights (loads with weights_only=True;
                        ``rtseg-nas evaluate --checkpoint OUT/checkpoint.pt`` works)
    OUT/model.onnx      the pruned model, BN folded, parity-checked against PyTorch
    OUT/prune.json      the spec, what pruning did, fine-tuning log (per step and final), the loss and
                        budget used, Dice before/after, ONNX parity

Fine-tuning learns from the unpruned model (a copy taken before pruning) by default
(``FinetuneSpec.distill``); the recipe and prune.json say which loss was used.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from compress._files import output_dir
from compress._finetune import FinetuneSpec, calibration_batches, finetune, split_budget
from compress._measure import LatencyComparison, compare_latency
from compress._prune import prune_model
from compress._spec import PruneResult, PruneSpec
from rtseg_core import CompressionError, Record, atomic_write_json, check_output_dir, dataset_path, scratch_dir

if TYPE_CHECKING:
    from profiling import TimingOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneReport(Record):
    """What ``prune_checkpoint`` wrote and measured. Dice: mean foreground Dice in [0, 1] on ``split``."""

    checkpoint: str  # file names inside the output folder
    onnx: str | None
    parent: str  # the input checkpoint
    recipe: str  # e.g. "prune-l1-r0.3+ft5", "prune-l1-macs0.5-s4+ft6-kd0.5-T2"
    data: str
    split: str
    size: int
    result: PruneResult
    dice_before: float | None  # unpruned model
    dice_pruned: float | None  # right after pruning, before the final fine-tune
    dice_after: float | None  # after the final fine-tune
    finetune: list[dict] = field(default_factory=list)
    onnx_max_abs_diff: float | None = None  # ONNX Runtime vs PyTorch on the exported graph
    notes: str = ""
    # the unpruned and the pruned graph timed against each other (compress.compare_latency), when asked
    latency: LatencyComparison | None = None
    # the fine-tune: its loss ("task", or "task+kd0.5-T2" distilled from the unpruned parent), the
    # Distillation used (None: task loss only), total epochs (between steps and final), the budget as
    # given (``--finetune-budget`` fraction of the parent's training epochs, or None: epochs given),
    # and the logs of the fine-tunes between steps (one list per step; ``finetune`` is the final one)
    loss: str = "task"
    distill: dict | None = None
    finetune_epochs: int = 0
    finetune_budget: float | None = None
    finetune_steps: list[list[dict]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        latency = self.latency.to_dict() if self.latency is not None else None
        return {**super().to_dict(), "result": self.result.to_dict(), "latency": latency}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PruneReport:
        """Read ``prune.json`` back (its ``result`` and ``latency`` become records again)."""
        data = dict(data)
        if isinstance(data.get("result"), dict):
            data["result"] = PruneResult.from_dict(data["result"])
        if isinstance(data.get("latency"), dict):
            data["latency"] = LatencyComparison.from_dict(data["latency"])
        return super().from_dict(data)


def load_for_compression(checkpoint: str | Path):
    """``(model, ckpt)`` from a checkpoint; a config that does not match the weights is a ConfigError naming it."""
    from models import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, source=str(checkpoint))
    return model.eval(), ckpt


def _data_defaults(ckpt, data: str | None, size: int | None, seed: int | None) -> tuple[str, int, int]:
    """``(data, size, seed)``: the arguments given, else those the checkpoint was trained with."""
    from segmentation import load_train_config

    trained = load_train_config(ckpt.meta)
    data_seed = trained.seed if trained.data_seed is None else trained.data_seed  # the split it was trained on
    return data or trained.data, int(size or trained.size), int(data_seed if seed is None else seed)


def compression_inputs(checkpoint: str | Path, data: str | None, ckpt=None) -> tuple[str, str | None]:
    """What compressing ``checkpoint`` reads and no output may replace: the checkpoint and the dataset
    folder, ``data`` or else the one the checkpoint was trained on (issue 23: an ``--out`` holding the
    training data was deleted by ``--overwrite`` when ``--data`` was left to the checkpoint)."""
    if data is None:
        from models import load_checkpoint
        from segmentation import load_train_config

        ckpt = load_checkpoint(checkpoint) if ckpt is None else ckpt
        data = load_train_config(ckpt.meta, source=str(checkpoint)).data
    return str(checkpoint), dataset_path(data)


def mean_dice(model: nn.Module, data: str, *, split: str, size: int, seed: int) -> float | None:
    from segmentation import evaluate_model

    return evaluate_model(model, data, split=split, size=size, seed=seed, device="cpu", progress=False).dice


def prune_checkpoint(
    checkpoint: str | Path,
    spec: PruneSpec,
    out_dir: str | Path,
    *,
    data: str | None = None,
    size: int | None = None,
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
) -> PruneReport:
    """Prune a checkpoint with ``spec``, fine-tune, export, evaluate; write ``out_dir`` (see module docstring).

    ``finetune_spec``: the fine-tune; ``None`` = no fine-tuning. Its ``epochs`` (or ``budget``: a
    fraction of the epochs the checkpoint was trained for, from its train config) are the TOTAL
    budget: with ``spec.steps`` > 1 they are split over the steps (:func:`split_budget`; the spec
    written to prune.json then holds the per-step epochs), unless ``spec.finetune_epochs_per_step``
    is set already (then ``epochs`` are the final fine-tune's, as when validate re-applies a
    stored recipe). With ``finetune_spec.distill`` every fine-tune learns from a copy of the
    unpruned model (the teacher). ``data``/``size``/``seed`` default
    to those the checkpoint was trained with; ``split`` is where Dice is measured. With
    ``stage=False`` the files go straight into ``out_dir`` (for callers that stage a larger folder).
    ``timing``: also time the unpruned and the pruned graph against each other with ONNX Runtime
    here (one alternating loop, ``report.latency``); None: no timing (needs ``export``).
    """
    from models import Checkpoint, save_checkpoint

    model, ckpt = load_for_compression(checkpoint)
    # the fine-tune budget and its split over the steps: a budget that cannot work fails before any work
    ft, budget, per_step_epochs, total_epochs = _finetune_plan(finetune_spec, spec, ckpt, checkpoint)
    if per_step_epochs != spec.finetune_epochs_per_step:  # the total split over the steps; prune.json keeps it
        spec = dataclasses.replace(spec, finetune_epochs_per_step=per_step_epochs)
    inputs = compression_inputs(checkpoint, data, ckpt)
    if spec.latency_backend.startswith("predict:"):  # a latency table is read too
        inputs = (*inputs, spec.latency_backend.partition(":")[2])
    if stage:  # before the work: a refused folder should cost nothing
        check_output_dir(out_dir, verb="prune", inputs=inputs, overwrite=overwrite)
    data, size, seed = _data_defaults(ckpt, data, size, seed)
    dice_before = mean_dice(model, data, split=split, size=size, seed=seed) if evaluate else None
    batches = (
        calibration_batches(data, size=size, seed=seed, count=spec.calibration_batches) if _needs_data(spec) else []
    )
    if spec.size is None:
        spec = dataclasses.replace(spec, size=size)
    if timing is not None and not export:
        raise CompressionError("prune: timing the pruned graph needs its ONNX export (export=True)")
    if budget is not None:
        log.info("--finetune-budget %g of the parent's training: %d fine-tune epoch(s)", budget, ft.epochs)
    distill = ft.distill if ft is not None and total_epochs else None
    teacher = copy.deepcopy(model).eval() if distill is not None else None  # the unpruned parent
    unpruned = (teacher if teacher is not None else copy.deepcopy(model)) if timing is not None else None
    per_step, step_logs = None, []
    if spec.finetune_epochs_per_step and ft is not None:

        def per_step(m: nn.Module, epochs: int) -> None:
            cfg = ft.train_config(data=data, size=size, seed=seed, epochs=epochs)
            step_logs.append(finetune(m, cfg, progress=progress, teacher=teacher, distill=distill))

    result = prune_model(model, spec, batches=batches, finetune_step=per_step, progress=progress)
    model.eval()
    dice_pruned = mean_dice(model, data, split=split, size=size, seed=seed) if evaluate else None
    logs = []
    # the rest of the budget: also the fine-tunes of steps whose increment met the final target at once
    final_epochs = total_epochs - sum(len(s) for s in step_logs)
    if ft is not None and final_epochs:
        cfg = ft.train_config(data=data, size=size, seed=seed, epochs=final_epochs)
        logs = finetune(model, cfg, progress=progress, teacher=teacher, distill=distill)
    dice_after = mean_dice(model, data, split=split, size=size, seed=seed) if evaluate and logs else dice_pruned
    epochs = len(logs) + sum(len(s) for s in step_logs)
    loss = ft.loss(teacher is not None) if ft is not None else "task"
    recipe = spec.label() + (f"+ft{epochs}" if epochs else "") + (f"-{distill.label()}" if distill else "")
    old = ckpt.pruning or {}
    history = list(old.get("history", [])) + list(result.history)
    pruning = {"history": history, "spec": spec.to_dict(), "recipe": recipe}
    if old:
        pruning["previous"] = {k: v for k, v in old.items() if k != "history"}
    meta = dict(ckpt.meta or {})
    meta.update(
        {
            "parent": str(checkpoint),
            "recipe": recipe,
            "prune": {k: v for k, v in result.to_dict().items() if k != "history"},
            "finetune_loss": loss,
        }
    )
    meta.setdefault("train", {"data": data, "size": size, "seed": seed})
    with output_dir(out_dir, verb="prune", inputs=inputs, stage=stage, overwrite=overwrite) as tmp:
        save_checkpoint(
            Checkpoint(
                config=ckpt.config,
                state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
                pruning=pruning,
                epoch=ckpt.epoch,
                metrics={"val_dice": dice_after} if dice_after is not None else {},
                meta=meta,
            ),
            tmp / "checkpoint.pt",
        )
        onnx_diff = latency = None
        if export:
            onnx_diff = _export(model, tmp / "model.onnx", size=size, opset=opset)
        if unpruned is not None and timing is not None:
            with scratch_dir("prune") as scratch:
                reference = Path(scratch) / "unpruned.onnx"
                _export(unpruned, reference, size=size, opset=opset)
                latency = compare_latency(reference, tmp / "model.onnx", timing)
        report = PruneReport(
            checkpoint="checkpoint.pt",
            onnx="model.onnx" if export else None,
            parent=str(checkpoint),
            recipe=recipe,
            data=data,
            split=split,
            size=size,
            result=result,
            dice_before=dice_before,
            dice_pruned=dice_pruned,
            dice_after=dice_after,
            finetune=logs,
            onnx_max_abs_diff=onnx_diff,
            notes="Dice: mean of PS and FH per-image Dice (segmentation.evaluate_model), PyTorch eval on the CPU"
            + (f"; latency: unpruned vs pruned ONNX graph, ONNX Runtime CPU, {latency.method}" if latency else ""),
            latency=latency,
            loss=loss,
            distill=distill.to_dict() if distill is not None else None,
            finetune_epochs=epochs,
            finetune_budget=budget,
            finetune_steps=step_logs,
        )
        atomic_write_json(tmp / "prune.json", report.to_dict())
    log.info(
        "pruned %s%s: %d -> %d params, %.3f -> %.3f GMACs",
        checkpoint,
        f" -> {out_dir}" if stage else "",  # unstaged: out_dir is the caller's temporary folder
        result.params_before,
        result.params_after,
        result.macs_before / 1e9,
        result.macs_after / 1e9,
    )
    return report


def _finetune_plan(
    finetune_spec: FinetuneSpec | None, spec: PruneSpec, ckpt, checkpoint
) -> tuple[FinetuneSpec | None, float | None, int, int]:
    """``(fine-tune with epochs resolved, the budget fraction given or None, epochs per step, total epochs)``."""
    from segmentation import load_train_config

    if finetune_spec is None:
        return None, None, spec.finetune_epochs_per_step, 0
    ft, budget = finetune_spec, finetune_spec.budget
    if budget is not None:
        if "epochs" not in ((ckpt.meta or {}).get("train") or {}):
            raise CompressionError(
                f"--finetune-budget: {checkpoint} records no training epochs (meta.train.epochs); "
                "give --finetune-epochs"
            )
        ft = finetune_spec.resolve_epochs(load_train_config(ckpt.meta, source=str(checkpoint)).epochs)
    if spec.steps > 1 and not spec.finetune_epochs_per_step:
        per_step, _ = split_budget(ft.epochs, spec.steps)
        return ft, budget, per_step, ft.epochs
    # per-step epochs given: ``epochs`` are the final fine-tune's
    return ft, budget, spec.finetune_epochs_per_step, ft.epochs + spec.finetune_epochs_per_step * (spec.steps - 1)


def _needs_data(spec: PruneSpec) -> bool:
    from compress._importance import get_importance

    return get_importance(spec.importance).needs_data


def _export(model: nn.Module, path: Path, *, size: int, opset: int) -> float:
    from profiling import ExportConfig, export_onnx
    from rtseg_core import ProfilingError

    try:
        return export_onnx(model, path, ExportConfig(opset=opset, height=size, width=size)).max_abs_diff
    except ProfilingError as exc:
        raise CompressionError(f"the pruned model does not export: {exc}") from None
