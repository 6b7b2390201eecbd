"""Building a study's report: compute every info object, then draw and write them.

``build_report(study_dir)`` writes into ``STUDY_DIR/report/`` (each file atomically)::

    dice_fps.{png,svg}  dice_macs.{png,svg}  dice_params.{png,svg}  hypervolume.{png,svg}
    front.csv  front.md  candidates.csv  summary.json  report.html
    remeasured.{png,svg}   (a predict:TABLE study with STUDY_DIR/remeasured.json)
    rungs.{png,svg}  rungs.csv  rung_ranks.csv   (a multi-fidelity study: rank at each rung)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from reports._html import render_html
from reports._hypervolume import hypervolume_history
from reports._info import ReportInfo
from reports._load import (
    load_candidates,
    load_environment,
    load_history,
    load_reference,
    load_study_settings,
    study_constraints,
    study_objectives,
)
from reports._pareto import pareto_front
from reports._plot_info import ValidatedMarks, dice_fps_info, dice_macs_info, dice_params_info
from reports._plot_rungs import plot_rungs
from reports._plot_validated import plot_validated
from reports._plots import plot_hypervolume_history, plot_remeasured, plot_scatter, save_figure
from reports._remeasured import remeasured_info
from reports._rungs import compute_rungs
from reports._ship import ShipInfo, latency_pairs, ship_info
from reports._tables import write_tables
from reports._unlisted import unlisted_trials
from reports._validated import choose_for_shipping, compute_validated
from rtseg_core import (
    StudyDir,
    StudySettings,
    atomic_write_json,
    atomic_write_text,
    check_output_dir,
    make_folder,
    mark_output,
    read_manifest,
)

logger = logging.getLogger(__name__)

PLOT_KEYS = ("dice_fps", "dice_macs", "dice_params", "hypervolume")


def compute_report(study_dir: str | os.PathLike) -> ReportInfo:
    """Read a study directory and compute the report's contents (no files written)."""
    study = StudyDir(study_dir)
    study_dir = study.root
    settings = load_study_settings(study_dir)
    objectives = study_objectives(settings)
    constraints = study_constraints(settings)
    df = load_candidates(study_dir)
    if df.empty:
        logger.warning("%s: the study has no candidates yet; the report will be empty", study_dir)
    front = pareto_front(df, objectives)
    history_path = study.history_csv
    history = load_history(study_dir, objectives, candidates=df)
    hv = hypervolume_history(
        history, objectives, source="history.csv" if history_path.exists() else "trial candidates (no history.csv)"
    )
    # issue 11: validated candidates (full budget, test split) are shown apart and preferred for shipping.
    validated = compute_validated(study_dir, objectives)
    choice, basis = choose_for_shipping(df, validated, constraints, study=str(study_dir))
    ship = ship_info(study_dir, choice, basis, df, validated)
    marks = _marks(ship, validated)
    return ReportInfo(
        study_dir=study_dir,
        title=settings.study_name if settings is not None else study_dir.resolve().name,
        settings=settings,
        objectives=objectives,
        constraints=constraints,
        candidates=df,
        front=front,
        plots=(dice_fps_info(df, marks), dice_macs_info(df, marks), dice_params_info(df, marks)),
        hypervolume=hv,
        choice=choice,
        environment=load_environment(study_dir),
        reference=load_reference(study_dir),
        synthetic=bool((df["dataset"] == "synthetic").any()) if len(df) else _settings_synthetic(settings),
        validated=validated,
        ship_basis=basis,
        remeasured=remeasured_info(study_dir, df),
        rungs=compute_rungs(study_dir, settings, validated.candidates if validated is not None else None),
        ship=ship,
        latency_pairs=latency_pairs(df, validated),
        unlisted=unlisted_trials(study_dir, df),
    )


def _marks(ship: ShipInfo, validated) -> ValidatedMarks:
    """What the figures mark: the pick (with its own numbers) and the validated front."""
    text = ""
    if ship.pick is not None:
        numbers = [f"Dice {ship.dice:.4f}" if ship.dice is not None else "no Dice"]
        if ship.latency_ms is not None:
            numbers.append(f"{ship.latency_ms:.2f} ms")
        where = "validated, test split:" if ship.basis == "validated" else "PROXY-ONLY:"
        text = f"SHIP {ship.pick}\n{where}\n{', '.join(numbers)}"
    front = tuple(validated.front.front_names) if validated is not None else ()
    return ValidatedMarks(front=front, pick=ship.pick, pick_text=text, basis=ship.basis)


def build_report(
    study_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, *, overwrite: bool = False
) -> Path:
    """Write plots (PNG + SVG), tables and a self-contained ``report.html``; returns the HTML's path.

    ``out_dir`` defaults to ``STUDY_DIR/report``. Every file is written atomically, so a reader
    never sees half a file; rerunning replaces them. A given ``out_dir`` must be new, empty or an
    earlier report (``overwrite``: also another verb's output that holds only files the suite
    wrote), so a report never writes over a user's files.
    """
    if out_dir is not None:  # checked before the work; the default folder belongs to the study
        out = Path(out_dir)
        legacy = (out / "report.html").is_file() and read_manifest(out) is None  # a report from before manifests
        check_output_dir(out, verb="report", inputs=[study_dir], overwrite=overwrite, in_place=True, legacy=legacy)
    info = compute_report(study_dir)
    out = StudyDir(study_dir).report_dir if out_dir is None else Path(out_dir)
    make_folder(out, option="--out")
    mark_output(out, verb="report")
    images: dict[str, bytes] = {}
    for plot in info.plots:
        images[plot.key] = save_figure(plot_scatter(plot), out, plot.key)["png"]
    images["hypervolume"] = save_figure(plot_hypervolume_history(info.hypervolume), out, "hypervolume")["png"]
    if info.remeasured is not None and info.remeasured.remeasured:
        images["remeasured"] = save_figure(plot_remeasured(info.remeasured), out, "remeasured")["png"]
    if info.validated is not None:  # issue 19: Dice interval x latency interval of every validated model
        images["validated"] = save_figure(plot_validated(info.validated), out, "validated")["png"]
    if info.rungs is not None:  # issue 11: how rank changes with budget
        images["rungs"] = save_figure(plot_rungs(info.rungs), out, "rungs")["png"]
        atomic_write_text(out / "rungs.csv", info.rungs.table().to_csv(index=False))
        atomic_write_text(out / "rung_ranks.csv", info.rungs.ranks.to_csv(index=False))
    write_tables(info.candidates, info.front, out)
    atomic_write_json(out / "summary.json", report_summary(info))
    path = atomic_write_text(out / "report.html", render_html(info, images))
    logger.info("report written to %s", path)
    return path


def report_summary(info: ReportInfo) -> dict[str, Any]:
    """The machine-readable gist of a report (``summary.json``)."""
    c = info.choice
    return {
        "study_dir": str(info.study_dir),
        "objectives": [list(o) for o in info.objectives],
        "constraints": info.constraints,
        "n_candidates": len(info.candidates),
        "front": list(info.front.front_names),
        "dominated": list(info.front.dominated_names),
        "infeasible": list(info.front.infeasible_names),
        "ship": {
            **(info.ship.to_dict() if info.ship is not None else {}),
            "best": c.best,
            "best_dice": c.best_dice,
            "fastest_within_tolerance": c.fastest,
            "fastest_fps": c.fastest_fps,
            "fastest_latency_kind": c.fastest_latency_kind,
            "tolerance_dice": c.tolerance,
            "notes": list(c.notes),
            "basis": info.ship_basis,
        },
        "validated": validated_summary(info.validated),
        "latency_pairs": [p.text() for p in info.latency_pairs],
        "unlisted_trials": info.unlisted.to_dict() if info.unlisted is not None else None,
        "hypervolume": {
            "final": info.hypervolume.values[-1] if info.hypervolume.values else None,
            "reference": list(info.hypervolume.reference),
            "reference_rule": "worst feasible value per objective + 10% of its range",
            "source": info.hypervolume.source,
        },
        "synthetic_data": info.synthetic,
        "remeasured": info.remeasured.summary() if info.remeasured is not None else None,
        "rungs": info.rungs.summary() if info.rungs is not None else None,
        "plots": {p.key: {"published_point": p.published is not None, "why": p.published_reason} for p in info.plots},
    }


def validated_summary(validated) -> dict[str, Any] | None:
    """The validated section of ``summary.json`` (None when nothing was validated)."""
    if validated is None:
        return None
    return {
        "candidates": [str(n) for n in validated.candidates["name"]],
        "front": [str(n) for n in validated.front.front["name"]],
        "budget": validated.budget,
        "proxy_vs_full_dice": validated.agreement.to_dict() if validated.agreement else None,
        "seeds": list(validated.seeds),
        "paired": validated.paired().to_dict(orient="records"),
    }


def _settings_synthetic(settings: StudySettings | None) -> bool:
    return settings is not None and settings.dataset == "synthetic"
