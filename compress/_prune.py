"""Structured pruning of any RTSeg-Net family member: :func:`prune_model` (PruneSpec in, PruneResult out)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from compress._importance import Batch, Scorer, get_importance
from compress._measure import count_macs, measure_latency_ms
from compress._spec import PruneResult, PruneSpec
from models import (
    DSConv2d,
    build_pruner,
    feasible_width,
    history_to_data,
    lowest,
    prunable_view,
    resolve_modules,
    shift_aware_keep,
    shifted_layers,
)
from rtseg_core import CompressionError

log = logging.getLogger(__name__)

FinetuneStep = Callable[[nn.Module, int], None]  # (model, epochs) -> None, trains in place


def prune_model(
    model: nn.Module,
    spec: PruneSpec,
    *,
    batches: Sequence[Batch] = (),
    finetune_step: FinetuneStep | None = None,
    progress: bool = False,
) -> PruneResult:
    """Prune ``model`` in place following ``spec``; return what was done.

    ``batches``: a few labelled (images, masks) training batches, needed by data-driven criteria
    (``taylor``, ``nni-taylor``). ``finetune_step(model, epochs)`` is called between steps when
    ``spec.finetune_epochs_per_step`` > 0: after every increment of a ``ratio`` schedule but the
    last, after every intermediate MACs target of a gradual ``target_macs`` schedule (a row of
    ``PruneResult.steps`` records the epochs it was followed by in ``finetune_epochs``). The model
    keeps its module names and types (DSConv2d stays DSConv2d); only widths change. Raises
    :class:`CompressionError` when the target cannot be reached by ``spec.max_ratio`` (the model is
    then pruned to ``max_ratio``: callers write nothing, they work on a fresh copy).
    """
    from models import count_parameters

    option = get_importance(spec.importance)
    if option.needs_data and not batches:
        raise CompressionError(f"PruneSpec.importance: {spec.importance!r} needs training data (give --data)")
    if getattr(model, "config", None) is None:
        raise CompressionError("prune_model: not an RTSeg-Net family model (no .config)")
    size = spec.size or 256
    resolve_modules(model, spec.ignored)  # unknown names fail before any work
    params_before = count_parameters(model)
    macs_before = count_macs(model, size)
    latency = _latency_probe(spec, size)
    latency_before = latency(model) if latency else None
    if spec.target_latency_ms is not None:
        log.info(
            "unpruned latency %.2f ms (%s, %d thread(s)); target %.2f ms",
            latency_before,
            spec.latency_backend,
            spec.latency_threads,
            spec.target_latency_ms,
        )

    scorer = option.factory()
    steps: list[dict] = []
    history: list[list] = []
    fallbacks = 0
    reached = spec.ratio is not None
    ratio = previous = 0.0
    milestone = 0  # index of the next intermediate MACs target (gradual pruning)
    initial: dict[str, int] = {}  # group key -> width before the first increment
    bar = tqdm(range(spec.increments), desc="prune", unit="step", disable=not progress, leave=False)
    for i in bar:
        ratio = spec.final_ratio * (i + 1) / spec.increments
        # Each increment traces the current model afresh: Torch-Pruning stores split/concat offsets
        # at trace time, so a second pass over the same TMP width with a stale graph indexes out of
        # range. The increment's ratio is therefore relative to the current widths.
        relative = 1.0 - (1.0 - ratio) / (1.0 - previous)
        with prunable_view(model):
            pruner = build_pruner(
                model,
                scorer,
                pruning_ratio=relative,
                global_pruning=spec.global_pruning,
                round_to=spec.round_to,
                ignored=resolve_modules(model, spec.ignored),
            )
            shifted = shifted_layers(model) if spec.shift_aware else {}
            scorer.prepare(model, batches, relative)
            if spec.global_pruning:
                for group in pruner.step(interactive=True):
                    fallbacks += _prune_proposed(pruner.DG, group, scorer, shifted, spec)
            else:
                fallbacks += _prune_uniform(pruner, scorer, shifted, spec, ratio, initial)
            scorer.finish(model)
            history.append(history_to_data(pruner.pruning_history()))
        previous = ratio
        # fvcore traces the whole model (~1 s): count every increment only when MACs steer.
        last = i + 1 == spec.increments
        row = {
            "increment": i + 1,
            "ratio": ratio,
            "params": count_parameters(model),
            "macs": count_macs(model, size) if spec.target_macs is not None or last else None,
        }
        if latency:
            row["latency_ms"] = latency(model)
        steps.append(row)
        bar.set_postfix(ratio=f"{ratio:.2f}", params=row["params"])
        log.info(
            "increment %d: ratio %.3f, %d params%s%s",
            i + 1,
            ratio,
            row["params"],
            f", {row['macs'] / 1e9:.4f} GMACs" if row["macs"] is not None else "",
            f", {row['latency_ms']:.2f} ms" if latency else "",
        )
        if spec.target_macs is not None and spec.steps > 1:
            # gradual: every intermediate MACs target passed ends a step; fine-tune once per step ended
            passed = 0
            while milestone < len(spec.milestones) - 1 and row["macs"] <= spec.milestones[milestone] * macs_before:
                milestone, passed = milestone + 1, passed + 1
            if passed:
                row["step"] = milestone  # steps finished after this increment
            if _target_met(spec, row, macs_before):
                row["step"] = spec.steps
                reached = True
                break
            if passed and finetune_step is not None and spec.finetune_epochs_per_step:
                row["finetune_epochs"] = passed * spec.finetune_epochs_per_step
                finetune_step(model, row["finetune_epochs"])
            continue
        if _target_met(spec, row, macs_before):
            reached = True
            break
        if finetune_step is not None and spec.finetune_epochs_per_step and not last:
            row["finetune_epochs"] = spec.finetune_epochs_per_step
            finetune_step(model, spec.finetune_epochs_per_step)
    if steps[-1]["macs"] is None:
        steps[-1]["macs"] = count_macs(model, size)
    if not reached:
        raise CompressionError(_unreachable(spec, steps[-1], macs_before, latency_before))
    widths = {
        n: int(m.weight.shape[0]) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear, DSConv2d))
    }
    return PruneResult(
        spec=spec.to_dict(),
        history=history,
        params_before=params_before,
        params_after=steps[-1]["params"],
        macs_before=macs_before,
        macs_after=steps[-1]["macs"],
        ratio=ratio,
        increments=len(steps),
        steps=steps,
        widths=widths,
        latency_before_ms=latency_before,
        latency_after_ms=steps[-1].get("latency_ms"),
        shift_fallbacks=fallbacks,
        notes=(
            f"Torch-Pruning DependencyGraph, importance {spec.importance}, "
            f"{'global' if spec.global_pruning else 'uniform'} ranking; MACs by fvcore at {size}x{size}"
        ),
    )


def _latency_probe(spec: PruneSpec, size: int):
    if spec.target_latency_ms is None:
        return None

    def probe(model: nn.Module) -> float:
        return measure_latency_ms(
            model, size=size, backend=spec.latency_backend, threads=spec.latency_threads, runs=spec.latency_runs
        )

    return probe


def _target_met(spec: PruneSpec, row: dict, macs_before: int) -> bool:
    if spec.target_macs is not None:
        return row["macs"] <= spec.target_macs * macs_before
    if spec.target_latency_ms is not None:
        return row["latency_ms"] <= spec.target_latency_ms
    return False  # a ratio target runs every increment


def _unreachable(spec: PruneSpec, last: dict, macs_before: int, latency_before: float | None) -> str:
    if spec.target_macs is not None:
        return (
            f"PruneSpec.target_macs: {spec.target_macs:g} of the unpruned MACs is unreachable: at max_ratio "
            f"{spec.max_ratio:g} the model still has {last['macs'] / macs_before:.3f} of them "
            f"({last['macs'] / 1e9:.4f} of {macs_before / 1e9:.4f} GMACs); raise --max-ratio or relax the target"
        )
    return (
        f"PruneSpec.target_latency_ms: {spec.target_latency_ms:g} ms is unreachable with {spec.latency_backend} "
        f"({spec.latency_threads} thread(s)): unpruned {latency_before:.2f} ms, {last['latency_ms']:.2f} ms at "
        f"max_ratio {spec.max_ratio:g}; raise --max-ratio or relax the target"
    )


def _prune_uniform(
    pruner, scorer: Scorer, shifted: dict[nn.Module, int], spec: PruneSpec, ratio: float, initial: dict[str, int]
) -> int:
    """One uniform increment: every prunable group goes to ``(1 - ratio)`` of its *initial* width.

    Widths are computed from the widths before the first increment (not compounded per increment),
    rounded to the nearest multiple of ``round_to`` (at least ``round_to``, or 1). Returns the number
    of shifted widths pruned without the shift-aware spread.
    """
    DG = pruner.DG
    fallbacks = 0
    groups = list(DG.get_all_groups(ignored_layers=pruner.ignored_layers, root_module_types=pruner.root_module_types))
    for group in groups:
        root, fn = group[0].dep.target.module, group[0].dep.handler
        channels = _width(DG, root, fn)
        if channels is None or channels <= 1:
            continue
        full = DG.get_pruning_group(root, fn, list(range(channels)))
        key = _group_key(full)
        start = initial.setdefault(key, channels)
        keep = _target_width(start, ratio, spec.round_to, channels)
        if keep >= channels:
            continue
        scores = scorer(full)
        if scores is None:  # the criterion has nothing to say about this group (e.g. bn-scale without BN)
            continue
        fallbacks += _apply(DG, root, fn, channels, keep, full, scores, shifted, spec)
    return fallbacks


def _target_width(start: int, ratio: float, round_to: int | None, channels: int) -> int:
    keep = start * (1.0 - ratio)
    if round_to:
        keep = max(round_to, round(keep / round_to) * round_to)
    return int(min(channels, max(1, int(keep))))


def _group_key(full) -> str:
    """A name for a coupled channel set that stays the same across re-traced increments."""
    DG = full._DG
    names = [
        DG._module2name.get(item.dep.target.module, "")
        for item in full
        if DG.is_out_channel_pruning_fn(item.dep.handler)
    ]
    return min(n for n in names if n) if any(names) else DG._module2name.get(full[0].dep.target.module, "?")


def _width(DG, root, fn) -> int | None:
    return DG.get_out_channels(root) if DG.is_out_channel_pruning_fn(fn) else DG.get_in_channels(root)


def _prune_proposed(DG, group, scorer: Scorer, shifted: dict[nn.Module, int], spec: PruneSpec) -> int:
    """Prune a group as Torch-Pruning's global ranking proposes, corrected for the floor width and the shift."""
    root, fn = group[0].dep.target.module, group[0].dep.handler
    channels = _width(DG, root, fn)
    proposed = [int(i) for i in group[0].idxs]
    # Never leave fewer than round_to (or 1) channels: Torch-Pruning's rounding can round a
    # narrow layer down to zero.
    keep = max(channels - len(proposed), min(channels, spec.round_to or 1))
    if keep == channels:
        return 0
    full = DG.get_pruning_group(root, fn, list(range(channels)))
    if _shift_of(full, channels, shifted) is None and keep == channels - len(proposed):
        group.prune()  # exactly Torch-Pruning's choice
        return 0
    scores = scorer(full)
    return _apply(
        DG, root, fn, channels, keep, full, torch.zeros(channels) if scores is None else scores, shifted, spec
    )


def _apply(
    DG, root, fn, channels: int, keep: int, full, scores: torch.Tensor, shifted: dict[nn.Module, int], spec: PruneSpec
) -> int:
    """Remove ``channels - keep`` channels of one group by score, spread over the TMP shift groups if shifted.

    (The choice goes through ``DG.get_pruning_group(...).prune()``: ``group.prune(idxs=)`` would
    record the history twice, the second time with the original indices.) Returns 1 if a shifted
    width had to be pruned without the shift-aware spread, else 0.
    """
    scores = scores.detach().float().cpu()
    shift = _shift_of(full, channels, shifted)
    if shift is not None:
        floor = min(channels, spec.round_to or 1)
        width = feasible_width(channels, keep, shift, round_to=spec.round_to)
        if width is not None and width >= floor:
            kept = set(shift_aware_keep(scores, width, shift))
            DG.get_pruning_group(root, fn, [i for i in range(channels) if i not in kept]).prune()
            return 0
        log.warning(
            "%s: no width <= %d keeps all %d shift groups of %d channels; pruning by score alone "
            "(some channels change shift group: fine-tune)",
            DG._module2name.get(root, "?"),
            keep,
            shift,
            channels,
        )
    DG.get_pruning_group(root, fn, lowest(scores, channels - keep)).prune()
    return int(shift is not None)


def _shift_of(full, channels: int, shifted: dict[nn.Module, int]) -> int | None:
    """The shift size if this (full) group's channels are a TMP-shifted width laid out 1:1 with the root."""
    if not shifted:
        return None
    DG = full._DG
    for item in full:
        module = item.dep.target.module
        if module in shifted and DG.is_out_channel_pruning_fn(item.dep.handler):
            # 1:1 with the root: every channel maps to itself (the order within the item may differ,
            # e.g. after the shift's split/concat index mapping)
            pairs = list(zip(item.idxs, item.root_idxs))
            same = len(pairs) == channels and all(int(a) == int(b) for a, b in pairs)
            same = same and {int(a) for a, _ in pairs} == set(range(channels))
            return shifted[module] if same else None
    return None
