"""Training one candidate at the full budget and building its validated record.

:func:`train_candidate` retrains an architecture from scratch (resuming its own checkpoint) and
evaluates it on the test split; :func:`validated_record` / :func:`variant_record` turn a trained
result and its latency row into the study's :class:`~rtseg_core.CandidateRecord`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models import RTSegConfig
from rtseg_core import (
    CandidateRecord,
    EvalMetrics,
    ReappliedResult,
    SettingsMismatchError,
    StudyDir,
    ValidatedResult,
    write_trained,
)
from validate._config import Candidate, budget_differences

if TYPE_CHECKING:
    from validate._graphs import TimedGraph

log = logging.getLogger(__name__)


def train_candidate(cand: Candidate, budget: dict[str, Any], study_dir: Path, *, device: str) -> ValidatedResult:
    """Train ``cand`` from scratch at ``budget`` (resuming its own checkpoint) and evaluate it on the test split.

    Returns (and writes atomically as ``trained.json``) the result; an existing ``trained.json``
    with the same budget is returned as is (finished candidates are skipped). A folder trained
    with another budget is refused, never silently mixed.
    """
    from models import load_model
    from segmentation import TrainConfig, evaluate_model, train

    study = StudyDir(study_dir)
    work = study.validated(cand.name)
    result = study.read_trained(cand.name)
    if result is not None:
        if result.budget != budget:
            raise SettingsMismatchError(
                f"{study.trained_json(cand.name)}: trained with another budget "
                f"({budget_differences(result.budget, budget)}); repeat the original options or move {work} away"
            )
        return result
    arch = RTSegConfig.from_dict(cand.config, source=f"candidate {cand.name}")
    ckpt = work / "checkpoint.pt"
    tc = TrainConfig(
        data=budget["data"], size=budget["size"], epochs=budget["epochs"], batch_size=budget["batch_size"],
        lr=budget["lr"], seed=budget["seed"], device=device,
    )  # fmt: skip
    if ckpt.is_file():
        from models import load_checkpoint

        before = (load_checkpoint(ckpt).meta or {}).get("train", {})
        differ = [k for k in ("data", "size", "epochs", "batch_size", "lr", "seed") if before.get(k) != getattr(tc, k)]
        if differ:
            raise SettingsMismatchError(
                f"{ckpt}: a training with other settings ({', '.join(f'{k}={before.get(k)!r}' for k in differ)}) "
                f"is in progress there; repeat its options or move {work} away"
            )
        log.info("%s: resuming the full-budget training from %s", cand.name, ckpt)
    result = train(arch, tc, work, resume=True, progress=False)
    model, _ = load_model(ckpt)
    ev = evaluate_model(
        model, budget["data"], split="test", size=budget["size"], seed=budget["seed"], device=device, progress=False
    )
    s = ev.summary
    out = ValidatedResult(
        candidate=cand.to_attrs(),
        budget=budget,
        epochs_trained=len(result.epochs),
        test=EvalMetrics(
            dice=_num(s.mean.dice),
            dice_ps=_num(s.ps.dice),
            dice_fh=_num(s.fh.dice),
            delta_aop_deg=_num(s.mean.delta_aop),
        ),
        val_dice_last_epoch=_num(result.epochs[-1].val_dice) if result.epochs else None,
    )
    write_trained(work, out)
    return study.read_trained(cand.name)  # what later runs will read, checked the same way


def validated_record(
    trained: ValidatedResult,
    latency: TimedGraph,
    *,
    dataset: str,
    threads: int,
    size: int,
    feasible: bool,
    feasibility_note: str = "",
) -> CandidateRecord:
    """The validated :class:`CandidateRecord` of one candidate (budget in ``recipe``).

    ``latency``: its :class:`~validate._graphs.TimedGraph` from :func:`~validate._graphs.time_entries`
    (kind, target, device, backend and how it was obtained travel with the number).
    """
    cand = Candidate.from_attrs(trained.candidate)
    b = trained.budget
    recipe = (
        f"full: {b['epochs']} epochs x whole train split, {b['size']}x{b['size']}, batch {b['batch_size']}, "
        f"lr {b['lr']:g} (AdamW, cosine), seed {b['seed']}, from scratch; test split"
    )
    notes = (
        f"validated: retrained from scratch at the full budget, Dice on the test split of {b['data']}; latency "
        f"{_latency_note(latency, threads, size)}; proxy Dice in the search {_fmt(cand.proxy_dice)}"
    )
    return _record(
        cand.name, trained.test.to_dict(), latency, dataset=dataset, threads=threads, size=size, feasible=feasible,
        parent=cand.name, trial=cand.trial, recipe=recipe, config=cand.config, notes=notes + feasibility_note,
    )  # fmt: skip


def variant_record(
    result: ReappliedResult,
    parent: ValidatedResult,
    latency: TimedGraph,
    *,
    dataset: str,
    threads: int,
    size: int,
    feasible: bool,
    feasibility_note: str = "",
) -> CandidateRecord:
    """The validated record of a compressed variant re-applied to its validated parent ``parent`` (trained.json)."""
    from validate._variants import VariantPlan, variant_recipe

    plan = VariantPlan.from_attrs(result.variant)
    cand = Candidate.from_attrs(parent.candidate)
    pb = parent.budget
    recipe = (
        f"{variant_recipe(result)}; parent {cand.name}: full: {pb['epochs']} epochs x whole train split, "
        f"{pb['size']}x{pb['size']}, from scratch; test split"
    )
    notes = (
        f"validated compressed variant: its recipe re-applied to {cand.name} after that parent's full-budget "
        f"training, Dice with ONNX Runtime on its exported graph on the test split of {pb['data']}; latency "
        f"{_latency_note(latency, threads, size)}; in compress, on the proxy-trained parent: Dice "
        f"{_fmt(plan.proxy_dice)} on the validation split ({plan.proxy_recipe})"
    )
    return _record(
        plan.name, result.test.to_dict(), latency, dataset=dataset, threads=threads, size=size, feasible=feasible,
        parent=cand.name, trial=cand.trial, recipe=recipe, config=cand.config, notes=notes + feasibility_note,
        precision=plan.precision,
    )  # fmt: skip


def _record(name, test, latency: TimedGraph, *, dataset, threads, size, feasible, parent, trial, recipe, config, notes,
            precision="fp32") -> CandidateRecord:  # fmt: skip
    # kind, target, device and backend are required fields of the timed graph: never made up here
    return CandidateRecord(
        name=name,
        source="validated",
        dataset=dataset,
        split="test",
        dice=test["dice"],
        dice_ps=test["dice_ps"],
        dice_fh=test["dice_fh"],
        delta_aop_deg=test["delta_aop_deg"],
        params=latency.params,
        macs=latency.macs,
        latency_ms=latency.median_ms,
        fps=latency.fps,
        latency_kind=latency.kind,
        target=latency.target,
        device=latency.device,
        backend=latency.backend,
        precision=precision,
        threads=threads,
        height=size,
        width=size,
        feasible=feasible,
        parent=parent,
        trial=trial,
        recipe=recipe,
        config=config,
        notes=notes,
    )


def _latency_note(latency: TimedGraph, threads: int, size: int) -> str:
    graph = f"; graph: {latency.graph}" if latency.graph else ""
    return (
        f"{latency.kind.upper()} on {latency.target}: {latency.how}, {threads} thread(s), batch 1, {size}x{size}{graph}"
    )


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
