"""Compressed variants, validated: their recipe re-applied to the validated, fully trained parent.

``compress --study`` prunes and quantizes trials that were trained only by the search's proxy
(a few short epochs); their Dice says little about the same recipe on a fully trained network
(in one demo run a pruned child fell from 82 % to 46 % Dice after 3 fine-tune epochs, in
another it kept 84 %). ``validate`` therefore trains each variant's parent at the full budget
and then, inside the same claim, re-applies the variant's recipe chain to
``validated/<parent>/checkpoint.pt`` with compress's own functions:

1. prune with the stored :class:`~compress.PruneSpec` (``prune.json``), then fine-tune for
   ``--finetune-epochs`` epochs (default: the variant's own fine-tune epochs; every other
   fine-tune setting is :class:`~compress.FinetuneSpec`'s default) on the full budget's data
   and size;
2. quantize with the stored :class:`~compress.QuantSpec` (``quantize.json``; an ``int8-qat``
   spec carries its own QAT epochs, so prune -> QAT re-applies both fine-tunes); a
   prune-then-quantize variant quantizes the re-applied pruned variant (``validated/<via>/``);
3. evaluate the exported (quantized) graph with ONNX Runtime on the TEST split, as
   ``compress`` measures its variants, scored at the reference resolution
   (``segmentation.REFERENCE_SIZE``, predictions resized).

A deploy-at-a-smaller-input variant (``resize.json``, ``prune --study --input-size D``) is
fine-tuned on the validated parent at the budget's size scaled by ``D / latency size``
(``compress.scaled_size``: 96 px for 256 gives 72 px for 192), evaluated there, and timed at ``D``
(its record's height/width), so each model is trained at its own size and timed at its own
deployment size.

Each variant is written, all or nothing, to ``validated/<variant>/`` (model files plus
``reapplied.json``: the test result, the fine-tune budget, the pruning history and the quant
spec, which is all another machine needs to rebuild a graph to time). A variant with
``reapplied.json`` is finished and skipped; one re-applied with another fine-tune budget is
refused, as a different training budget is.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtseg_core import (
    CANDIDATE_JSON,
    CHECKPOINT,
    COMPRESSED,
    DEPLOYMENT_SIZE,
    EvalMetrics,
    ReappliedResult,
    SearchError,
    StudyDir,
    read_json,
    staged_output,
    write_reapplied,
)
from validate._config import check_finished, seed_slot

log = logging.getLogger(__name__)

PRUNE_JSON, QUANTIZE_JSON, RESIZE_JSON = "prune.json", "quantize.json", "resize.json"


@dataclass(frozen=True)
class VariantPlan:
    """One compressed variant's recipe chain as ``compress --study`` recorded it.

    ``prune``/``quant``: the stored PruneSpec / QuantSpec dicts (None: no such step);
    ``finetune_epochs``: the fine-tune epochs it had after pruning (DSConv QAT epochs for a
    ``dsconv`` quantization); ``via``: the pruned variant whose checkpoint the quantization
    read (prune-then-quantize chains); ``proxy_dice``: its Dice in compress (on the
    proxy-trained parent, validation split).
    """

    name: str
    parent: str
    precision: str
    prune: dict | None = None
    prune_label: str | None = None
    finetune_epochs: int = 0
    quant: dict | None = None
    quant_label: str | None = None
    via: str | None = None
    proxy_dice: float | None = None
    proxy_recipe: str = ""
    deploy_size: int | None = None  # a resize variant: the deployment (timing) size
    latency_size: int | None = None  # ... and its parent's, the study's latency size

    def to_attrs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> VariantPlan:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in attrs.items() if k in names})


def find_variants(study_dir: str | Path) -> list[VariantPlan]:
    """Every ``compressed/*/`` variant of the study, prerequisites (pruned ``via`` variants) first."""
    study = StudyDir(study_dir)
    root = study.compressed_dir
    plans = []
    for record, folder in study.read_candidates((COMPRESSED,)):
        parent = record.parent
        if not parent:
            where = folder / CANDIDATE_JSON
            raise SearchError(f"{where}: a compressed variant without 'parent'; it cannot be re-applied")
        prune = _prune_step(folder)
        resize = _resize_step(folder)
        quant, via = None, None
        qpath = folder / QUANTIZE_JSON
        if qpath.is_file():
            q = read_json(qpath)
            quant = {"spec": dict(q["spec"]), "label": str(q.get("recipe", "")), "qat": len(q.get("finetune") or [])}
            source = Path(str(q.get("parent", "")))
            # A prune-then-quantize chain quantized compressed/<via>/checkpoint.pt; the study may
            # have moved since, so the folder names are compared, not the absolute path.
            if source.parent.parent.name == COMPRESSED:
                via = source.parent.name
                if prune is None:
                    prune = _prune_step(root / via)
                if prune is None:
                    raise SearchError(f"{qpath}: quantized {source}, whose {PRUNE_JSON} is missing from {root / via}")
        if prune is None and quant is None and resize is None:
            raise SearchError(
                f"{folder}: none of {PRUNE_JSON}, {QUANTIZE_JSON}, {RESIZE_JSON}; the recipe cannot be re-applied"
            )
        plans.append(
            VariantPlan(
                name=folder.name,
                parent=parent,
                precision=record.precision,
                prune=prune["spec"] if prune else None,
                prune_label=prune["label"] if prune else None,
                finetune_epochs=(
                    prune["epochs"] if prune else resize["epochs"] if resize else quant["qat"] if quant else 0
                ),
                quant=quant["spec"] if quant else None,
                quant_label=quant["label"] if quant else None,
                via=via,
                proxy_dice=record.dice,
                proxy_recipe=record.recipe,
                deploy_size=resize["deploy_size"] if resize else None,
                latency_size=resize["latency_size"] if resize else None,
            )
        )
    return sorted(plans, key=lambda p: (p.via is not None, p.name))


def _prune_step(folder: Path) -> dict | None:
    path = folder / PRUNE_JSON
    if not path.is_file():
        return None
    from compress import PruneSpec

    data = read_json(path)
    try:
        spec = data["result"]["spec"]
    except (KeyError, TypeError):
        raise SearchError(f"{path}: no result.spec (not a prune report)") from None
    label = PruneSpec.from_dict(spec).label()
    return {"spec": dict(spec), "label": label, "epochs": len(data.get("finetune") or [])}


def _resize_step(folder: Path) -> dict | None:
    path = folder / RESIZE_JSON
    if not path.is_file():
        return None
    data = read_json(path)
    try:
        out = {"deploy_size": int(data["deploy_size"]), "latency_size": int(data["latency_size"])}
    except (KeyError, TypeError, ValueError):
        raise SearchError(f"{path}: no deploy_size/latency_size (not a resize report)") from None
    return {**out, "epochs": len(data.get("finetune") or [])}


def variant_size(plan: VariantPlan, latency_size: int) -> int:
    """The size a variant is timed and recorded at: a resize variant's deployment size, else the study's."""
    return plan.deploy_size or latency_size


def variant_budget(plan: VariantPlan, budget: dict[str, Any], finetune_epochs: int | None) -> dict[str, Any]:
    """What a re-applied variant depends on: the parent's budget, the recipe and the fine-tune budget."""
    from compress import FinetuneSpec

    ft = FinetuneSpec()
    out = {
        "parent_budget": budget,
        "prune": plan.prune,
        "quantize": plan.quant,
        "finetune_epochs": plan.finetune_epochs if finetune_epochs is None else int(finetune_epochs),
        "finetune": {"lr": ft.lr, "min_lr": ft.min_lr, "batch_size": ft.batch_size, "weight_decay": ft.weight_decay},
    }
    if plan.deploy_size is not None:  # only then: budgets of other variants stay as they were written
        out["resize"] = {"deploy_size": plan.deploy_size, "latency_size": plan.latency_size}
    return out


def reapply_variant(
    plan: VariantPlan,
    budget: dict[str, Any],
    study_dir: Path,
    *,
    finetune_epochs: int | None,
    device: str,
    threads: int,
    seed: int | None = None,
) -> ReappliedResult:
    """Re-apply ``plan`` to the parent's training of seed ``seed`` (None: the budget's) and test it.

    Reads ``StudyDir.validated(parent, slot)/checkpoint.pt`` and returns (and writes with the
    model files, atomically, to ``StudyDir.validated(variant, slot)``) the result; an existing
    result with the same budget is returned as is. The fine-tune and the calibration use the
    budget's data seed whatever the training seed (the same images for every seed).
    """
    from compress import (
        FinetuneSpec,
        PruneSpec,
        QuantSpec,
        ort_predict,
        prune_checkpoint,
        quantize_checkpoint,
        resize_checkpoint,
    )
    from models import load_checkpoint
    from segmentation import evaluate

    seed = int(budget["seed"]) if seed is None else int(seed)
    slot = seed_slot(budget, seed)
    study = StudyDir(study_dir)
    work = study.validated(plan.name, slot)
    vbudget = variant_budget(plan, budget, finetune_epochs)
    result = study.read_reapplied(plan.name, slot)
    if result is not None:
        check_finished(result, vbudget, seed, path=study.reapplied_json(plan.name, slot), work=work,
                       fix="repeat the original --finetune-epochs and training options")  # fmt: skip
        return result
    parent_ckpt = study.validated(plan.parent, slot) / CHECKPOINT
    if not parent_ckpt.is_file():
        raise SearchError(f"{parent_ckpt}: the validated parent of {plan.name} is missing")
    epochs = vbudget["finetune_epochs"]
    # The data seed (split, images, the fine-tune's batches) is the budget's for every training seed; the
    # record keeps the training seed of the parent it was re-applied to (resume compares it).
    data, size, data_seed = budget["data"], budget["size"], budget["seed"]
    ft = FinetuneSpec(epochs=epochs, device=device)
    source, logs, steps = parent_ckpt, [], []
    inputs = [parent_ckpt]
    via_ckpt = study.validated(plan.via, slot) / CHECKPOINT if plan.via else None
    via = study.read_reapplied(plan.via, slot) if plan.via else None
    if via_ckpt is not None and via is not None and _same_pruning(via.budget, vbudget):
        inputs.append(via_ckpt)
    with staged_output(work, verb="validate", inputs=inputs, option="validated") as tmp:
        if plan.deploy_size is not None:
            rreport = resize_checkpoint(
                parent_ckpt, plan.deploy_size, tmp, latency_size=plan.latency_size or DEPLOYMENT_SIZE, data=data,
                seed=data_seed, finetune_spec=ft, evaluate=False, stage=False, progress=False,
            )  # fmt: skip
            logs, size, source = rreport.finetune, rreport.input_size, tmp / CHECKPOINT
            steps.append(
                f"deploy at {plan.deploy_size}x{plan.deploy_size} (of {rreport.latency_size}): fine-tune {epochs} "
                f"epoch(s) at {size}x{size}"
            )
        if plan.prune is not None:
            if len(inputs) == 2:  # the pruned variant was re-applied already (variants run in order)
                source = via_ckpt
                logs = list(via.finetune)
            else:
                pruned = tmp / "pruned" if plan.quant is not None else tmp
                report = prune_checkpoint(
                    parent_ckpt, PruneSpec.from_dict(plan.prune), pruned, data=data, size=size, seed=data_seed,
                    finetune_spec=ft, evaluate=False, stage=False, progress=False,
                )  # fmt: skip
                logs = report.finetune
                source = pruned / CHECKPOINT
            steps.append(f"{plan.prune_label} + fine-tune {epochs} epoch(s)")
        if plan.quant is not None:
            spec = QuantSpec.from_dict(plan.quant)
            # The quantization-aware fine-tune: DSConv's runs the variant's epochs, int8-qat its spec's own.
            qat = {"dsconv": ft, "int8-qat": FinetuneSpec(epochs=spec.qat_epochs, device=device)}.get(spec.format)
            quantize_checkpoint(
                source, spec, tmp, data=data, size=size, seed=data_seed, finetune_spec=qat, evaluate=False,
                measure=False, stage=False, progress=False,
            )  # fmt: skip
            steps.append(plan.quant_label or spec.label())
        onnx_path = tmp / "model.onnx"
        # at the variant's input size, scored at the reference size (segmentation.REFERENCE_SIZE)
        summary = evaluate(
            ort_predict(onnx_path, threads=threads), data, split="test", size=size, seed=data_seed, progress=False
        ).summary
        pruning = load_checkpoint(source).pruning or {}
        result = ReappliedResult(
            variant=plan.to_attrs(),
            budget=vbudget,
            steps=tuple(steps),
            test=EvalMetrics(
                dice=_num(summary.mean.dice),
                dice_ps=_num(summary.ps.dice),
                dice_fh=_num(summary.fh.dice),
                delta_aop_deg=_num(summary.mean.delta_aop),
                reference_size=summary.reference_size,
            ),
            finetune=tuple({k: e.get(k) for k in ("epoch", "loss", "val_dice")} for e in logs),
            pruning_history=pruning.get("history"),
            seed=seed,
        )
        write_reapplied(tmp, result)
    dice = result.test.dice
    shown = "n/a (not finite)" if dice is None else f"{dice:.4f}"
    log.info("re-applied %s to the validated %s (seed %d): test Dice %s", plan.name, plan.parent, seed, shown)
    return study.read_reapplied(plan.name, slot)  # what later runs will read, checked the same way


def _same_pruning(before: dict[str, Any], vbudget: dict[str, Any]) -> bool:
    """Whether a re-applied pruned variant (its budget ``before``) is the prune step of ``vbudget`` (same
    parent budget, spec and fine-tune), so a prune-then-quantize variant can quantize its checkpoint."""
    return {k: v for k, v in before.items() if k != "quantize"} == {k: v for k, v in vbudget.items() if k != "quantize"}


def variant_recipe(result: ReappliedResult) -> str:
    """``re-applied to the validated parent: <prune> + fine-tune N epochs (...), then <quant>``."""
    b = result.budget
    ft = b["finetune"]
    pb = b["parent_budget"]
    steps = list(result.steps)
    if b.get("prune") is not None and steps:
        steps[0] += (
            f" (AdamW lr {ft['lr']:g} cosine to {ft['min_lr']:g}, batch {ft['batch_size']}, whole train split, "
            f"{pb['size']}x{pb['size']})"
        )
    return "re-applied to the validated parent: " + ", then ".join(steps)


def _num(value: Any) -> float | None:
    import math

    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
