"""Training one candidate at the full budget and building its validated record.

:func:`train_candidate` retrains an architecture from scratch (resuming its own checkpoint) and
evaluates it on the test split; :func:`validated_record` / :func:`variant_record` turn a trained
result and its latency row into the study's :class:`~rtseg_core.CandidateRecord`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models import RTSegConfig
from rtseg_core import (
    CandidateRecord,
    EvalMetrics,
    ReappliedResult,
    SeedStats,
    SettingsMismatchError,
    StudyDir,
    ValidatedResult,
    scaled_size,
    write_trained,
)
from validate._config import Candidate, check_finished, seed_slot
from validate._reuse import copy_reused, find_reusable
from validate._seeds import describe_seeds, mean_metrics, record_fields

if TYPE_CHECKING:
    from validate._graphs import TimedGraph

log = logging.getLogger(__name__)


def train_candidate(
    cand: Candidate,
    budget: dict[str, Any],
    study_dir: Path,
    *,
    device: str,
    seed: int | None = None,
    reuse_from: Sequence[Path] = (),
) -> ValidatedResult:
    """Train ``cand`` from scratch at ``budget`` with training seed ``seed`` (None: the budget's) and test it.

    Returns (and writes atomically as ``trained.json`` in ``StudyDir.validated(name, slot)``) the
    result; an existing ``trained.json`` with the same budget is returned as is (finished
    candidates are skipped). A folder trained with another budget is refused, never silently
    mixed. The split and the data come from the budget's seed whatever the training seed, so
    seed s of every candidate is trained and tested on the same images (a paired comparison).
    ``reuse_from``: other studies (checked: validate._reuse.check_reuse_sources) whose finished
    training of the same architecture and recipe is copied here instead of training (validate._reuse).
    """
    from models import load_model
    from segmentation import TrainConfig, evaluate_model, train

    seed = int(budget["seed"]) if seed is None else int(seed)
    slot = seed_slot(budget, seed)
    study = StudyDir(study_dir)
    work = study.validated(cand.name, slot)
    result = study.read_trained(cand.name, slot)
    if result is not None:
        check_finished(result, budget, seed, path=study.trained_json(cand.name, slot), work=work,
                       fix="repeat the original options")  # fmt: skip
        return result
    size = train_size(cand, budget)
    found = find_reusable(cand, budget, seed, reuse_from, size, train_size) if reuse_from else None
    if found is not None:
        source, folder, other = found
        log.info("%s (seed %d): reused %s from %s (same architecture and recipe)", cand.name, seed, other.name,
                 source)  # fmt: skip
        copy_reused(folder, other, cand, work, source)
        return study.read_trained(cand.name, slot)
    arch = RTSegConfig.from_dict(cand.config, source=f"candidate {cand.name}")
    ckpt = work / "checkpoint.pt"
    tc = TrainConfig(
        data=budget["data"], size=size, epochs=budget["epochs"], batch_size=budget["batch_size"],
        lr=budget["lr"], seed=seed, data_seed=None if slot is None else int(budget["seed"]), device=device,
    )  # fmt: skip
    if ckpt.is_file():
        from models import load_checkpoint

        before = (load_checkpoint(ckpt).meta or {}).get("train", {})
        keys = ("data", "size", "epochs", "batch_size", "lr", "seed", "data_seed")
        differ = [k for k in keys if before.get(k) != getattr(tc, k)]
        if differ:
            raise SettingsMismatchError(
                f"{ckpt}: a training with other settings ({', '.join(f'{k}={before.get(k)!r}' for k in differ)}) "
                f"is in progress there; repeat its options or move {work} away"
            )
        log.info("%s (seed %d): resuming the full-budget training from %s", cand.name, seed, ckpt)
    result = train(arch, tc, work, resume=True, progress=False)
    model, _ = load_model(ckpt)
    ev = evaluate_model(
        model, budget["data"], split="test", size=size, seed=budget["seed"], device=device, progress=False
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
            reference_size=ev.reference_size,
        ),
        val_dice_last_epoch=_num(result.epochs[-1].val_dice) if result.epochs else None,
        seed=seed,
    )
    write_trained(work, out)
    return study.read_trained(cand.name, slot)  # what later runs will read, checked the same way


def train_size(cand: Candidate, budget: dict[str, Any]) -> int:
    """The size ``cand`` trains at: the budget's, scaled by its searched input size / the latency size
    (``rtseg_core.scaled_size``) when the search drew a smaller deployment input for it."""
    if cand.input_size is None:
        return int(budget["size"])
    return scaled_size(int(budget["size"]), cand.input_size, int(cand.searched_latency_size or cand.input_size))


def validated_record(
    trained: ValidatedResult,
    latency: TimedGraph,
    *,
    dataset: str,
    threads: int,
    size: int,
    feasible: bool,
    feasibility_note: str = "",
    stats: SeedStats | None = None,
) -> CandidateRecord:
    """The validated :class:`CandidateRecord` of one candidate (budget in ``recipe``).

    ``latency``: its :class:`~validate._graphs.TimedGraph` from :func:`~validate._graphs.time_entries`
    (kind, target, device, backend and how it was obtained travel with the number). ``stats``: the
    candidate over its training seeds; its Dice is then the mean over them (``trained``: the first seed's run).
    """
    cand = Candidate.from_attrs(trained.candidate)
    b = trained.budget
    recipe = (
        f"full: {b['epochs']} epochs x whole train split, {_trained_at(cand, b)}, batch {b['batch_size']}, "
        f"lr {b['lr']:g} (AdamW, cosine), {_seeds_text(stats, trained.train_seed, b)}, from scratch; test split"
    )
    notes = (
        f"validated: retrained from scratch at the full budget, Dice on the test split of {b['data']}"
        f"{_reference_note(trained.test.reference_size)}"
        f"{_seeds_note(stats)}; latency {_latency_note(latency, threads, size)}; proxy Dice in the search "
        f"{_fmt(cand.proxy_dice)}"
    )
    return _record(
        cand.name, _test(trained, stats), latency, dataset=dataset, threads=threads, size=size, feasible=feasible,
        parent=cand.name, trial=cand.trial, recipe=recipe, config=cand.config, notes=notes + feasibility_note,
        extra=record_fields(stats) if stats is not None else {},
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
    stats: SeedStats | None = None,
) -> CandidateRecord:
    """The validated record of a compressed variant re-applied to its validated parent ``parent`` (trained.json).

    ``stats``: the variant over its parent's training seeds (Dice = the mean), as in :func:`validated_record`.
    """
    from validate._variants import VariantPlan, variant_recipe

    plan = VariantPlan.from_attrs(result.variant)
    cand = Candidate.from_attrs(parent.candidate)
    pb = parent.budget
    recipe = (
        f"{variant_recipe(result)}; parent {cand.name}: full: {pb['epochs']} epochs x whole train split, "
        f"{pb['size']}x{pb['size']}, {_seeds_text(stats, result.train_seed, pb)}, from scratch; test split"
    )
    notes = (
        f"validated compressed variant: its recipe re-applied to {cand.name} after that parent's full-budget "
        f"training, Dice with ONNX Runtime on its exported graph on the test split of {pb['data']}"
        f"{_reference_note(result.test.reference_size)}"
        f"{_seeds_note(stats)}; latency "
        f"{_latency_note(latency, threads, size)}; in compress, on the proxy-trained parent: Dice "
        f"{_fmt(plan.proxy_dice)} on the validation split ({plan.proxy_recipe})"
    )
    return _record(
        plan.name, _test(result, stats), latency, dataset=dataset, threads=threads, size=size, feasible=feasible,
        parent=cand.name, trial=cand.trial, recipe=recipe, config=cand.config, notes=notes + feasibility_note,
        precision=plan.precision, extra=record_fields(stats) if stats is not None else {},
    )  # fmt: skip


def _test(result: ValidatedResult | ReappliedResult, stats: SeedStats | None) -> dict[str, Any]:
    """The record's test metrics: the mean over the seeds (``stats``), else the one run's."""
    return (result.test if stats is None else mean_metrics(stats.runs)).to_dict()


def _seeds_text(stats: SeedStats | None, seed: int, budget: dict[str, Any]) -> str:
    """``seed 0`` (one run, as before) or ``seeds 0, 1, 2 (split and data of seed 0)``."""
    seeds = stats.seeds if stats is not None else (seed,)
    if len(seeds) == 1 and seeds[0] == budget["seed"]:
        return f"seed {seeds[0]}"
    return f"seed(s) {', '.join(map(str, seeds))} (split and data of seed {budget['seed']})"


def _seeds_note(stats: SeedStats | None) -> str:
    if stats is None or len(stats.runs) < 2 and not stats.collapsed_seeds:
        return ""
    return (
        f"; {describe_seeds(stats)}; latency from the first seed's graph only (one run per model; the seed "
        "changes the weights, not the graph)"
    )


def _record(name, test, latency: TimedGraph, *, dataset, threads, size, feasible, parent, trial, recipe, config, notes,
            precision="fp32", extra=None) -> CandidateRecord:  # fmt: skip
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
        **(extra or {}),
    )


def _latency_note(latency: TimedGraph, threads: int, size: int) -> str:
    graph = f"; graph: {latency.graph}" if latency.graph else ""
    return (
        f"{latency.kind.upper()} on {latency.target}: {latency.how}, {threads} thread(s), batch 1, {size}x{size}{graph}"
    )


def _trained_at(cand: Candidate, budget: dict[str, Any]) -> str:
    size = train_size(cand, budget)
    if cand.input_size is None:
        return f"{size}x{size}"
    return f"{size}x{size} (the budget's {budget['size']} scaled to its deployment input {cand.input_size})"


def _reference_note(reference_size: int | None) -> str:
    """Where the Dice was scored: the reference labels (predictions resized to them) or, in older results, the input."""
    if reference_size is None:
        return " (scored at the input size: written before evaluations had a reference size)"
    return f" (scored on the labels at the reference {reference_size}x{reference_size}, predictions resized to it)"


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
