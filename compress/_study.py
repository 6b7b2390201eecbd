"""Compress the best members of a search and record each result beside its parent trial.

Parents: ``STUDY_DIR/trials/<n>/candidate.json`` (a CandidateRecord) with ``checkpoint.pt`` next
to it, read through :class:`rtseg_core.StudyDir`. The feasible Pareto front over (dice max,
latency_ms min) is the suite's one non-dominated sort (:mod:`rtseg_core._pareto`); its top
``top_k`` by Dice are compressed. Each variant is written, all or nothing, to
``STUDY_DIR/compressed/<parent>.<tag>/`` with its model files and a ``candidate.json``
(``source="compressed"``, ``parent=<parent name>``, ``recipe``), measured the same way for
every variant: Dice on the parent's split with ONNX Runtime on the exported graph, latency with
ONNX Runtime on this machine (batch 1, the parent's thread count).

Two sizes: ``model.onnx`` is exported at the size the parent was TRAINED at, and Dice is
measured on it at that size; latency, MACs and the record's height/width are at the size the
search TIMED its trials at (``--latency-size``, the parent record's height), so a variant is
compared with its parent at one size. When the two differ, the timed graph is exported again at
the latency size from the same weights (and, for INT8/FP16, converted again with the same
QuantSpec, calibrated at that size) and kept beside ``model.onnx`` as ``model_<N>px.onnx``.
Dice is scored at the reference resolution (``segmentation.REFERENCE_SIZE``), predictions resized.

``resize=D`` (``prune --study --input-size D``) makes a deploy-at-a-smaller-input variant
``<parent>.in<D>`` of each parent (:func:`~compress.resize_checkpoint`): fine-tuned and evaluated
at the scaled training size, timed and recorded (height/width) at ``D``.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

from compress._measure import count_macs
from compress._pipeline import compression_inputs, load_for_compression, prune_checkpoint
from compress._quantize import QuantSpec, convert, export_graph, latency_ms, ort_predict, quantize_checkpoint
from compress._resize import checkpoint_input_size, resize_checkpoint
from compress._spec import PruneSpec
from models import count_parameters
from profiling import describe_device
from rtseg_core import (
    CHECKPOINT,
    DEPLOYMENT_SIZE,
    TRIALS,
    CandidateRecord,
    CompressionError,
    ConfigError,
    Constraints,
    InputFileError,
    StudyDir,
    pareto_indices,
    read_json,
    staged_output,
    write_candidate,
)
from segmentation import evaluate, load_train_config

log = logging.getLogger(__name__)


def read_trials(study_dir: Path) -> list[tuple[CandidateRecord, Path]]:
    """Every trial's record and folder (errors name the file)."""
    return StudyDir(study_dir).read_candidates((TRIALS,))


def pareto_parents(records: list[CandidateRecord], top_k: int) -> list[CandidateRecord]:
    """Top ``top_k`` by Dice of the feasible front over (dice max, latency_ms min)."""
    usable = [
        r
        for r in records
        if r.feasible and r.dice is not None and r.latency_ms is not None and _finite(r.dice, r.latency_ms)
    ]
    keep = pareto_indices([(r.dice, r.latency_ms) for r in usable], ["maximize", "minimize"])
    front = [usable[i] for i in keep]
    return sorted(front, key=lambda r: -r.dice)[:top_k]


def prune_tag(spec: PruneSpec) -> str:
    if spec.ratio is not None:
        return f"p{round(spec.ratio * 100)}"
    if spec.target_macs is not None:
        return f"pm{round(spec.target_macs * 100)}"
    return f"pl{spec.target_latency_ms:g}ms"


def compress_study(
    study_dir: str | Path,
    *,
    top_k: int = 3,
    prune: PruneSpec | None = None,
    quantize: QuantSpec | None = None,
    resize: int | None = None,
    finetune_spec=None,
    data: str | None = None,
    runs: int = 30,
    progress: bool = True,
    overwrite: bool = False,
) -> list[CandidateRecord]:
    """Compress the top-k feasible Pareto trials of ``study_dir``; returns the records written.

    With both ``prune`` and ``quantize``, each parent gives a pruned variant and a quantized
    version of that pruned variant (both with ``parent`` = the trial). ``finetune_spec``
    (:class:`~compress._finetune.FinetuneSpec`) fine-tunes after pruning / for DSConv QAT.
    A variant folder under ``compressed/`` is replaced only when it holds nothing but a previous
    output of the same verb, or with ``overwrite``.
    """
    if not Path(study_dir).is_dir():
        raise InputFileError(f"--study {study_dir}: not a folder")
    study = StudyDir(study_dir)
    if prune is None and quantize is None and resize is None:
        raise ConfigError("--study: give a pruning target and/or --format to quantize, or --input-size")
    if resize is not None and (prune is not None or quantize is not None):
        raise ConfigError(f"--input-size {resize}: with --study, a resize is its own variant (no prune or quantize)")
    if top_k < 1:
        raise ConfigError(f"--top-k: must be >= 1, got {top_k}")
    trials = read_trials(study.root)
    if not trials:
        raise InputFileError(f"{study.trials_dir}: no */candidate.json; run a search first")
    folders = {r.name: folder for r, folder in trials}
    parents = pareto_parents([r for r, _ in trials], top_k)
    limits = study_limits(study.root)
    if not parents:
        raise CompressionError(f"{study.root}: no feasible trial with both dice and latency_ms; nothing to compress")
    written = []
    for parent in parents:
        ckpt = folders[parent.name] / CHECKPOINT
        if not ckpt.is_file():
            raise CompressionError(f"{ckpt}: the parent's checkpoint is missing (trial {parent.name})")
        source, recipe, first = ckpt, "", len(written)
        inputs = list(compression_inputs(ckpt, data))
        if resize is not None:
            name = f"{parent.name}.in{resize}"
            with staged_output(study.compressed(name), verb="resize", inputs=inputs, overwrite=overwrite,
                               option="--study") as tmp:  # fmt: skip
                rreport = resize_checkpoint(
                    ckpt, resize, tmp, latency_size=parent.height or DEPLOYMENT_SIZE, data=data,
                    finetune_spec=finetune_spec, evaluate=False, stage=False, progress=progress,
                )  # fmt: skip
                record = _measure(tmp, name, parent, rreport.recipe, rreport.data, None, runs=runs, limits=limits)
                write_candidate(tmp, record)
            written.append(record)
        if prune is not None:
            name = f"{parent.name}.{prune_tag(prune)}"
            final = study.compressed(name)
            with staged_output(final, verb="prune", inputs=inputs, overwrite=overwrite, option="--study") as tmp:
                report = prune_checkpoint(
                    ckpt, prune, tmp, data=data, finetune_spec=finetune_spec, stage=False, progress=progress
                )
                recipe = report.recipe
                record = _measure(tmp, name, parent, recipe, report.data, None, runs=runs, limits=limits)
                write_candidate(tmp, record)
            written.append(record)
            source = final / CHECKPOINT
        if quantize is not None:
            name = f"{parent.name}.{prune_tag(prune) + '_' if prune else ''}{quantize.tag()}"
            final = study.compressed(name)
            with staged_output(
                final, verb="quantize", inputs=[*inputs, source], overwrite=overwrite, option="--study"
            ) as tmp:
                qreport = quantize_checkpoint(
                    source,
                    quantize,
                    tmp,
                    data=data,
                    finetune_spec=finetune_spec,
                    stage=False,
                    measure=False,
                    evaluate=False,
                    progress=progress,
                )
                full = f"{recipe} -> {qreport.recipe}" if recipe else qreport.recipe
                record = _measure(tmp, name, parent, full, qreport.data, quantize, runs=runs, limits=limits)
                write_candidate(tmp, record)
            written.append(record)
        log.info("compressed %s: %s", parent.name, ", ".join(r.name for r in written[first:]))
    return written


def _measure(
    folder: Path,
    name: str,
    parent: CandidateRecord,
    recipe: str,
    data: str,
    quant: QuantSpec | None,
    *,
    runs: int,
    limits: Constraints,
) -> CandidateRecord:
    """The candidate row of one variant: Dice/AoP (ORT on model.onnx at its input size: the training
    size, or a resized variant's), params/MACs and ORT latency at the parent's latency size, or at a
    resized variant's deployment size (module docstring)."""
    onnx_path = folder / "model.onnx"
    ckpt_path = folder / CHECKPOINT
    if not ckpt_path.is_file():  # an INT8/FP16 variant keeps its source's weights and architecture
        ckpt_path = _source_checkpoint(folder)
    model, ckpt = load_for_compression(ckpt_path)
    trained = load_train_config(ckpt.meta, source=str(ckpt_path))
    threads = parent.threads or 1
    input_size = checkpoint_input_size(ckpt)
    result = evaluate(
        ort_predict(onnx_path, threads=threads),
        data,
        split=parent.split,
        size=input_size,
        seed=trained.seed,
        progress=False,
    )
    summary = result.summary
    size = int((ckpt.meta or {}).get("deploy_size") or parent.height or input_size)
    timed = onnx_path
    if size != input_size:
        timed = _timing_graph(folder, model, quant, size=size, data=data, seed=trained.seed)
    precision = quant.precision if quant is not None else "fp32"
    lat = latency_ms(timed, threads=threads, runs=runs, precision=precision)
    feasible = _feasible(parent, limits, lat, count_parameters(model))
    ref = result.reference_size
    dice_at = f"Dice at the input size {input_size}x{input_size} on {onnx_path.name}, scored at the reference {ref}px"
    sizes = (
        dice_at
        if timed == onnx_path
        else f"{dice_at}, latency and MACs at the deployment size {size}x{size} on {timed.name} (the same weights "
        "exported at that size)"
    )
    return CandidateRecord(
        name=name,
        source="compressed",
        dataset=parent.dataset,
        split=parent.split,
        **summary.headline().to_dict(),
        params=count_parameters(model),
        macs=count_macs(model, size),
        latency_ms=lat,
        fps=1000.0 / lat if lat else None,
        latency_kind="measured",
        target="local",
        device=describe_device(gpu=False),
        backend="onnxruntime",
        precision=precision,
        threads=threads,
        height=size,
        width=size,  # square inputs; a resized variant is timed at its deployment size, not the parent's
        feasible=feasible,
        parent=parent.name,
        trial=parent.trial,
        recipe=recipe,
        config=ckpt.config.to_dict(),
        notes=(
            f"Dice: ONNX Runtime, {parent.split} split; latency: ONNX Runtime CPU, batch 1, "
            f"{threads} thread(s), median of {runs} runs on this machine; {sizes}"
            + ("" if parent.target == "local" else f" (the parent's latency was measured on {parent.target})")
        ),
    )


def _timing_graph(folder: Path, model, quant: QuantSpec | None, *, size: int, data: str, seed: int) -> Path:
    """``folder/model_<size>px.onnx``: the variant's graph at the latency ``size``. An FP32 or
    DSConv variant is its model exported at that size; an INT8/FP16 one is its source model
    exported at that size and converted with the same ``quant`` (calibrated at that size)."""
    out = folder / f"model_{size}px.onnx"
    opset = quant.export_opset if quant is not None else 17
    quant = quant.graph_spec() if quant is not None else None  # int8-qat: its weights, converted as int8-static
    if quant is None or quant.info.convert is None:
        export_graph(model, out, size=size, opset=opset)
        return out
    with tempfile.TemporaryDirectory(prefix="rtseg-timed-") as scratch:
        fp32 = Path(scratch) / "model_fp32.onnx"
        export_graph(model, fp32, size=size, opset=opset)
        convert(fp32, out, quant, data=data, size=size, seed=seed, work=Path(scratch))
    return out


def _source_checkpoint(folder: Path) -> Path:
    data = read_json(folder / "quantize.json")
    return Path(data["parent"])


def study_limits(study: Path) -> Constraints:
    """The study's constraints from ``study.json`` (none, with a warning, when the study has no settings file)."""
    settings = StudyDir(study).read_settings()
    return Constraints() if settings is None else settings.constraints


def _feasible(parent: CandidateRecord, limits: Constraints, latency: float, params: int) -> bool:
    """The study's constraints applied to the variant.

    Latency limits are checked only when the parent was timed here too (``target == "local"``);
    a limit meant for another device cannot be judged from this machine's time, so the parent's
    verdict stands for it.
    """
    fps = 1000.0 / latency if latency else None
    if parent.target != "local":
        return limits.params_only().met_by(params=params, latency_ms=None, fps=None) and bool(parent.feasible)
    return limits.met_by(params=params, latency_ms=latency, fps=fps)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)
