"""Several studies' VALIDATED fronts side by side (``run.py report --compare DIR DIR ... --out OUT``).

Issue 11's question: does a search strategy (fixed budget, multi-fidelity, early stopping, a
supernet) find better architectures *after full training* for the compute it spent? Per study:

- the strategy, from ``study.json``;
- the search compute as the files record it: trials by outcome (``history.csv``), epochs and
  step caps trained (``trials/<n>/metrics.json``), trial wall seconds (``history.csv`` start and
  completion times, 1 s resolution), trial CPU seconds (``history.csv`` ``cpu_s``: comparable
  across machine loads, unlike wall seconds; "not recorded" for studies written before it
  existed) and training seconds (``metrics.json`` ``wall_s``); for a
  supernet study the supernet's own training record (``supernet.json`` beside the ``supernet.pt``
  that ``study.json`` names; ``metrics.json`` in a folder written before). What is missing is said,
  never guessed;
- the validated candidates (``validated/*/candidate.json``): their feasible front over (Dice max,
  latency_ms min) and its hypervolume under ONE reference point for all studies
  (:func:`reports.default_reference` over every study's validated feasible points);
- the best validated candidate, the study's own validated ``paper``, and the check: candidates
  with test Dice >= paper's - 0.005 (0.5 Dice points) and latency <= paper's / 1.5.

Validated latencies of different studies come from different ``validate`` runs (other load,
perhaps another day): the speed-up against each study's own ``paper`` is the comparable number.
Studies validated with different budgets or latency conditions (input size, threads, target)
are refused with a :class:`ConfigError` naming the studies and the field.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports._hypervolume import DEFAULT_PAD, default_reference, hypervolume
from reports._load import read_history_csv, study_constraints
from reports._pareto import FrontInfo, pareto_front
from reports._strategies import RANDOM, StrategyGroup, group_strategies
from reports._units import dice_difference, dice_points
from reports._validated import load_validated
from rtseg_core import (
    SUPERNET_JSON,
    ConfigError,
    StudyDir,
    StudySettings,
    SupernetSettings,
    finite_or_none,
    is_finite_number,
    read_supernet_training,
    read_training_metrics,
)

logger = logging.getLogger(__name__)

OBJECTIVES: tuple[tuple[str, str], ...] = (("dice", "maximize"), ("latency_ms", "minimize"))
DICE_TOLERANCE = 0.005  # 0.5 Dice points, Dice as a fraction
SPEEDUP = 1.5
# The latency conditions every validated record of every compared study must share.
LATENCY_FIELDS = ("target", "height", "width", "threads", "latency_kind")
# The history.csv columns the search-compute count reads (cpu_s is optional: older studies lack it).
HISTORY_COLUMNS = ("state", "reason", "datetime_start", "datetime_complete")
REFERENCE_RULE = (
    f"worst validated feasible value per objective over ALL compared studies + {DEFAULT_PAD:.0%} of its range"
)


@dataclass(frozen=True)
class SearchCompute:
    """What a study's search spent, as its files record it; ``missing`` says what they do not."""

    trials: dict[str, int]  # outcome -> count (history.csv): complete, stopped, rejected, failed, other
    trained_trials: int  # trial folders with a metrics.json
    epochs: int  # epochs trained over all trials
    steps: int | None  # sum of epochs x steps_per_epoch cap; None when a trial trained on the whole split
    trial_wall_s: float | None  # sum over trials of completion - start (history.csv, 1 s resolution)
    train_wall_s: float | None  # sum of metrics.json wall_s (training only)
    trial_cpu_s: float | None = None  # sum of history.csv cpu_s (None: the column is absent)
    supernet: dict[str, Any] | None = None  # the supernet's training record (supernet studies)
    predictor: dict[str, Any] | None = None  # a --predictor search's phase: {"samples_cpu_s", "nsga_cpu_s", "cpu_s"}
    missing: tuple[str, ...] = ()

    def describe(self) -> str:
        t = self.trials
        parts = [
            f"{sum(t.values())} trials ("
            + ", ".join(f"{v} {k}" for k, v in t.items() if v)
            + f"), {self.trained_trials} trained",
            f"{self.epochs} epochs" + (f" = at most {self.steps} steps" if self.steps is not None else ""),
        ]
        if self.trial_wall_s is not None:
            parts.append(f"trials {self.trial_wall_s:.0f} s wall")
        parts.append("trial CPU not recorded" if self.trial_cpu_s is None else f"trials {self.trial_cpu_s:.1f} s CPU")
        if self.train_wall_s is not None:
            parts.append(f"training {self.train_wall_s:.1f} s")
        sn = self.supernet
        if sn:
            parts.append(
                f"supernet: {sn.get('epochs', '?')} epochs x {sn.get('steps_per_epoch') or 'all'} steps x "
                f"{sn.get('members_per_step', '?')} members per step"
                + (f", {sn['seconds']:.1f} s" if sn.get("seconds") is not None else "")
                + (f", {sn['cpu_s']:.1f} s CPU" if sn.get("cpu_s") is not None else "")
            )
        pr = self.predictor
        if pr and pr.get("cpu_s") is not None:
            parts.append(
                f"predictor phase {pr['cpu_s']:.1f} s CPU (samples {pr['samples_cpu_s']:.1f}, "
                f"NSGA-II {pr['nsga_cpu_s']:.1f})"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trials": dict(self.trials),
            "trained_trials": self.trained_trials,
            "epochs": self.epochs,
            "steps_at_most": self.steps,
            "trial_wall_s": self.trial_wall_s,
            "train_wall_s": self.train_wall_s,
            "trial_cpu_s": self.trial_cpu_s,
            "supernet": self.supernet,
            "predictor": self.predictor,
            "missing": list(self.missing),
            "text": self.describe(),
        }


@dataclass(frozen=True)
class PaperCheck:
    """Validated candidates within 0.5 Dice points of the study's own fully trained paper at >= 1.5x its speed."""

    paper: dict[str, Any] | None  # {"name", "dice", "latency_ms"}; None when paper was not validated
    dice_floor: float | None
    latency_ceiling_ms: float | None
    passing: tuple[dict[str, Any], ...]  # {"name", "dice", "latency_ms", "dice_delta", "speedup"}
    closest_by_dice: dict[str, Any] | None  # among the >= 1.5x faster: the best Dice
    closest_by_speed: dict[str, Any] | None  # among those within 0.5 points: the fastest
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "paper": self.paper,
            "dice_floor": self.dice_floor,
            "latency_ceiling_ms": self.latency_ceiling_ms,
            "passing": list(self.passing),
            "closest_by_dice": self.closest_by_dice,
            "closest_by_speed": self.closest_by_speed,
            "message": self.message,
        }


@dataclass(frozen=True)
class StudyComparison:
    """One study's column of the comparison."""

    label: str
    study_dir: Path
    strategy: str
    compute: SearchCompute
    validated: pd.DataFrame  # load_validated()
    front: FrontInfo  # over OBJECTIVES, validated records only
    hypervolume: float
    best: dict[str, Any] | None  # highest test Dice among the feasible validated
    check: PaperCheck
    budget: dict[str, Any]
    conditions: dict[str, Any]  # LATENCY_FIELDS -> value
    device: str
    constraints: dict[str, float | None] = field(default_factory=dict)  # the search's, from study.json
    search_seed: int | None = None  # the search's --seed (study.json); None without one

    def constraints_text(self) -> str:
        return describe_constraints(self.constraints)

    @property
    def n_validated(self) -> int:
        return len(self.validated)

    def points(self) -> np.ndarray:
        """(Dice, latency_ms) of the feasible validated candidates with both values."""
        return _points(self.validated)


@dataclass(frozen=True)
class CompareInfo:
    studies: tuple[StudyComparison, ...]
    reference: tuple[float, float]  # (Dice, latency_ms) in objective units
    budget: dict[str, Any]
    conditions: dict[str, Any]
    devices: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    groups: tuple[StrategyGroup, ...] = ()  # the studies grouped by strategy (reports._strategies)

    def table(self) -> pd.DataFrame:
        """``compare.csv``: one row per study."""
        rows = []
        for s in self.studies:
            c, k = s.compute, s.check
            sn = c.supernet or {}
            paper = k.paper or {}
            best = s.best or {}
            rows.append(
                {
                    "study": s.label,
                    "study_dir": str(s.study_dir),
                    "strategy": s.strategy,
                    "search_seed": s.search_seed,
                    "trials": sum(c.trials.values()),
                    **{f"trials_{key}": v for key, v in c.trials.items()},
                    "trained_trials": c.trained_trials,
                    "epochs_trained": c.epochs,
                    "steps_at_most": c.steps,
                    "trial_wall_s": c.trial_wall_s,
                    "train_wall_s": c.train_wall_s,
                    "trial_cpu_s": c.trial_cpu_s,
                    "supernet_epochs": sn.get("epochs"),
                    "supernet_steps_per_epoch": sn.get("steps_per_epoch"),
                    "supernet_members_per_step": sn.get("members_per_step"),
                    "supernet_steps_at_most": sn.get("steps_at_most"),
                    "supernet_wall_s": sn.get("seconds"),
                    "supernet_cpu_s": sn.get("cpu_s"),
                    "predictor_cpu_s": (c.predictor or {}).get("cpu_s"),
                    "compute_missing": "; ".join(c.missing),
                    "n_validated": s.n_validated,
                    "n_validated_feasible": len(s.points()),
                    "front": " ".join(s.front.front_names),
                    "hypervolume": s.hypervolume,
                    "hv_reference_dice": self.reference[0],
                    "hv_reference_latency_ms": self.reference[1],
                    "best_name": best.get("name"),
                    "best_dice": best.get("dice"),
                    "best_latency_ms": best.get("latency_ms"),
                    "best_speedup_vs_paper": best.get("speedup"),
                    "paper_dice": paper.get("dice"),
                    "paper_latency_ms": paper.get("latency_ms"),
                    "meets_paper_check": " ".join(p["name"] for p in k.passing),
                    "closest_by_dice": (k.closest_by_dice or {}).get("name"),
                    "closest_by_speed": (k.closest_by_speed or {}).get("name"),
                    "device": s.device,
                    "constraints": s.constraints_text(),
                }
            )
        out = pd.DataFrame(rows)
        ints = ("steps_at_most", "supernet_epochs", "supernet_steps_per_epoch", "supernet_members_per_step",
                "supernet_steps_at_most")  # fmt: skip
        for col in ints:
            out[col] = pd.array([None if v is None or pd.isna(v) else int(v) for v in out[col]], dtype="Int64")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "objectives": [list(o) for o in OBJECTIVES],
            "reference_point": {"dice": self.reference[0], "latency_ms": self.reference[1], "rule": REFERENCE_RULE},
            "check": f"test Dice >= paper's - {DICE_TOLERANCE} and latency_ms <= paper's / {SPEEDUP}",
            "budget": self.budget,
            "latency_conditions": self.conditions,
            "devices": list(self.devices),
            "notes": list(self.notes),
            "strategies": [g.to_dict() for g in self.groups],
            "studies": [
                {
                    "study": s.label,
                    "study_dir": str(s.study_dir),
                    "strategy": s.strategy,
                    "search_seed": s.search_seed,
                    "compute": s.compute.to_dict(),
                    "n_validated": s.n_validated,
                    "validated": [
                        {
                            "name": str(r.name),
                            "dice": finite_or_none(r.dice),
                            "latency_ms": finite_or_none(r.latency_ms),
                            "feasible": bool(r.feasible),
                        }
                        for r in s.validated.itertuples(index=False)
                    ],  # fmt: skip
                    "front": list(s.front.front_names),
                    "hypervolume": s.hypervolume,
                    "best": s.best,
                    "paper_check": s.check.to_dict(),
                    "device": s.device,
                    "constraints": dict(s.constraints),
                }
                for s in self.studies
            ],
        }


# -- computing ---------------------------------------------------------------------------------------
def compare_studies(study_dirs: list[str | os.PathLike]) -> CompareInfo:
    """Read every study (files only) and compare their validated fronts; see the module docstring."""
    if len(study_dirs) < 2:
        raise ConfigError(f"--compare: give two or more study folders, got {len(study_dirs)}")
    roots = [StudyDir.existing(d).root for d in study_dirs]
    seen: dict[Path, str] = {}
    for r, given in zip(roots, study_dirs):
        if r.resolve() in seen:
            raise ConfigError(f"--compare: {given} is given twice (also as {seen[r.resolve()]})")
        seen[r.resolve()] = str(given)
    labels = _labels(roots)
    parts = [_read_study(root, label) for root, label in zip(roots, labels)]
    budget, conditions = _same_conditions(parts)
    pooled = np.vstack([_points(p["validated"]) for p in parts])
    directions = [d for _, d in OBJECTIVES]
    if len(pooled) == 0:
        raise ConfigError(
            "--compare: no study has a feasible validated candidate with Dice and latency; nothing to compare"
        )
    reference = default_reference(pooled, directions)
    studies = []
    for p in parts:
        df = p["validated"]
        pts = _points(df)
        studies.append(
            StudyComparison(
                label=p["label"],
                study_dir=p["root"],
                strategy=p["strategy"],
                compute=p["compute"],
                validated=df,
                front=pareto_front(df, OBJECTIVES),
                hypervolume=hypervolume(pts, reference, directions) if len(pts) else 0.0,
                best=_best(df),
                check=paper_check(df),
                budget=p["budget"],
                conditions=p["conditions"],
                device=p["device"],
                constraints=p["constraints"],
                search_seed=p["search_seed"],
            )
        )
    devices = tuple(sorted({s.device for s in studies}))
    notes = [
        "Validated latencies of different studies come from different `validate` runs (other machine load, "
        "perhaps another day): compare the speed-up against each study's own paper, not raw milliseconds "
        "across studies."
    ]
    if len(devices) > 1:
        notes.append(f"The studies were validated on different devices ({'; '.join(devices)}).")
    if len({s.constraints_text() for s in studies}) > 1:
        notes.append(
            "The studies were searched under DIFFERENT constraints ("
            + "; ".join(f"{s.label}: {s.constraints_text()}" for s in studies)
            + "): each search kept and rejected candidates by its own limits, so their fronts answer different "
            "questions; the validated feasibility below is judged by each study's own limits."
        )
    trained = {s.label: s.compute.steps for s in studies if s.compute.supernet is None and s.compute.steps}
    if len(trained) > 1 and max(trained.values()) > 1.1 * min(trained.values()):
        notes.append(
            "The searches did not spend the same compute (training steps, at most: "
            + ", ".join(f"{k} {v}" for k, v in trained.items())
            + "): weigh the hypervolumes with that in mind."
        )
    return CompareInfo(
        studies=tuple(studies),
        reference=(float(reference[0]), float(reference[1])),
        budget=budget,
        conditions=conditions,
        devices=devices,
        notes=tuple(notes),
        groups=group_strategies(studies, [s.search_seed for s in studies]),
    )


def paper_check(validated: pd.DataFrame) -> PaperCheck:
    """Feasible validated candidates with Dice >= paper - 0.005 and latency <= paper / 1.5 (paper excluded)."""
    rows = validated[validated["feasible"].astype(bool)]
    ok = rows["dice"].notna() & rows["latency_ms"].notna()
    papers = validated[(validated["name"] == "paper") & validated["dice"].notna() & validated["latency_ms"].notna()]
    if papers.empty:
        return PaperCheck(None, None, None, (), None, None, "paper was not validated in this study: no check")
    p = papers.iloc[0]
    paper = {"name": "paper", "dice": float(p["dice"]), "latency_ms": float(p["latency_ms"])}
    floor, ceiling = paper["dice"] - DICE_TOLERANCE, paper["latency_ms"] / SPEEDUP
    others = [
        {
            "name": str(r.name),
            "dice": float(r.dice),
            "latency_ms": float(r.latency_ms),
            "dice_delta": float(r.dice) - paper["dice"],
            "speedup": paper["latency_ms"] / float(r.latency_ms),
        }
        for r in rows[ok].itertuples(index=False)
        if r.name != "paper"
    ]
    fast = [o for o in others if o["latency_ms"] <= ceiling]
    accurate = [o for o in others if o["dice"] >= floor]
    passing = tuple(sorted((o for o in fast if o["dice"] >= floor), key=lambda o: (-o["speedup"], o["name"])))
    by_dice = max(fast, key=lambda o: (o["dice"], o["name"]), default=None)
    by_speed = max(accurate, key=lambda o: (o["speedup"], o["name"]), default=None)
    if passing:
        msg = "meets it: " + ", ".join(
            f"{o['name']} ({dice_difference(o['dice_delta'])}, {o['speedup']:.2f}x faster)" for o in passing
        )
    elif not others:
        msg = "none: no feasible validated candidate besides paper"
    else:
        a = (
            f"closest by Dice among the >= {SPEEDUP}x faster: {by_dice['name']} "
            f"({dice_difference(by_dice['dice_delta'])}, {by_dice['speedup']:.2f}x)"
            if by_dice
            else f"none is >= {SPEEDUP}x faster (fastest: " + _short(max(others, key=lambda o: o["speedup"])) + ")"
        )
        b = (
            f"closest by speed within {dice_points(DICE_TOLERANCE):g} Dice points: {by_speed['name']} "
            f"({by_speed['speedup']:.2f}x, {dice_difference(by_speed['dice_delta'])})"
            if by_speed
            else f"none is within {dice_points(DICE_TOLERANCE):g} Dice points (best: "
            + _short(max(others, key=lambda o: o["dice"]))
            + ")"
        )
        msg = f"none; {a}; {b}"
    return PaperCheck(paper, floor, ceiling, passing, by_dice, by_speed, msg)


def _short(o: dict[str, Any]) -> str:
    return f"{o['name']}, {dice_difference(o['dice_delta'])}, {o['speedup']:.2f}x"


def _read_study(root: Path, label: str) -> dict[str, Any]:
    study = StudyDir(root)
    settings = study.read_settings()
    validated = load_validated(root)
    if validated.empty:
        raise ConfigError(
            f"{root}: no validated candidates (validated/*/candidate.json); run `python run.py validate --study "
            f"{root}` first: --compare compares validated fronts only"
        )
    summary = study.read_validated_summary()
    if summary is None:
        raise ConfigError(
            f"{study.validated_summary_json}: not found; the validate budget of {label} is unknown, so it cannot be "
            f"compared: run `python run.py validate --study {root}` again to finish the validation"
        )
    budget = summary.budget
    conditions: dict[str, Any] = {}
    for f in LATENCY_FIELDS:
        values = sorted({_plain(v) for v in validated[f]}, key=str)
        if len(values) != 1:
            raise ConfigError(
                f"{study.validated_dir}: the validated records of {label} mix latency conditions: {f!r} takes "
                f"{values}; validate them in one run"
            )
        conditions[f] = values[0]
    devices = sorted({str(d) for d in validated["device"]})
    return {
        "root": root,
        "label": label,
        "strategy": strategy(settings),
        "search_seed": None if settings is None else settings.seed,
        "compute": search_compute(study, settings),
        "validated": validated,
        "budget": dict(budget),
        "conditions": conditions,
        "device": "; ".join(devices),
        "constraints": study_constraints(settings),
    }


def _same_conditions(parts: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    first = parts[0]
    for other in parts[1:]:
        for what, key in (("validate budget", "budget"), ("latency condition", "conditions")):
            a, b = first[key], other[key]
            differ = sorted({k for k in (*a, *b) if a.get(k) != b.get(k)})
            if differ:
                k = differ[0]
                raise ConfigError(
                    f"--compare: {first['label']} and {other['label']} were validated with a different {what}: "
                    f"{k!r} = {a.get(k)!r} vs {b.get(k)!r}"
                    + (f" (also differ: {', '.join(differ[1:])})" if len(differ) > 1 else "")
                    + "; validate them with the same options before comparing"
                )
    return first["budget"], first["conditions"]


def strategy(settings: StudySettings | None) -> str:
    """The search strategy as ``study.json`` records it."""
    if settings is None:
        return "unknown (no study.json)"
    if isinstance(settings.search, SupernetSettings):
        return "supernet (one-shot, inherited weights)"
    search = settings.search
    proxy = search.proxy_training
    # `search --sampler random` is the baseline: the same budget, architectures drawn at random
    sampled = f"{RANDOM}, " if settings.sampler == "random" else ""
    if proxy.fidelity:
        return f"{sampled}multi-fidelity (rungs {', '.join(map(str, proxy.fidelity))} epochs, eta {proxy.eta})"
    if search.early_stop:
        return f"{sampled}early-stop (up to {proxy.epochs} epochs)"
    return f"{sampled}fixed-budget ({proxy.epochs} epochs)"


def search_compute(study: StudyDir, settings: StudySettings | None) -> SearchCompute:
    """The search's compute from ``history.csv``, ``trials/*/metrics.json`` and a supernet's record."""
    missing: list[str] = []
    trials = {"complete": 0, "stopped": 0, "rejected": 0, "failed": 0, "other": 0}
    trial_wall: float | None = None
    trial_cpu: float | None = None
    if study.history_csv.is_file():
        hist = read_history_csv(study.history_csv, required=HISTORY_COLUMNS, dtype=str, keep_default_na=False)
        untimed = no_cpu = 0
        trial_wall = 0.0
        has_cpu = "cpu_s" in hist.columns
        if has_cpu:
            trial_cpu = 0.0
        else:
            missing.append(f"{study.history_csv.name} has no cpu_s column: trial CPU seconds not recorded")
        for r in hist.to_dict("records"):
            state = str(r["state"]).rsplit(".", 1)[-1].upper()
            reason = str(r["reason"])
            key = {"COMPLETE": "complete", "FAIL": "failed"}.get(state)
            if state == "PRUNED":
                key = "rejected" if reason.startswith("rejected") else "stopped"
            trials[key or "other"] += 1
            start, end = _time(r["datetime_start"]), _time(r["datetime_complete"])
            if start is None or end is None:
                untimed += 1
            else:
                trial_wall += (end - start).total_seconds()
            cpu = finite_or_none(r.get("cpu_s")) if has_cpu else None
            if cpu is None:
                no_cpu += has_cpu
            else:
                trial_cpu += cpu
        if no_cpu:
            missing.append(f"{no_cpu} trial(s) in history.csv without cpu_s (not in the CPU seconds)")
        if untimed:
            missing.append(f"{untimed} trial(s) in history.csv without start and completion times (not in the wall)")
    else:
        missing.append(f"{study.history_csv.name} absent: trial outcomes and wall seconds unknown")
    epochs, steps, train_wall, trained = 0, 0, 0.0, 0
    whole_split = False
    for folder in sorted(p.parent for p in study.trials_dir.glob("*/metrics.json")):
        m = read_training_metrics(folder)
        n = len(m["epochs"])
        trained += 1
        epochs += n
        cap = (m.get("train") or {}).get("steps_per_epoch")
        if cap is None:
            whole_split = True
        else:
            steps += n * int(cap)
        train_wall += float(m.get("wall_s") or 0.0)
    if whole_split:
        missing.append("some trials trained on the whole split each epoch: their step count is not recorded")
    supernet = None
    if settings is not None and isinstance(settings.search, SupernetSettings):
        supernet, note = _supernet_record(settings.search)
        if note:
            missing.append(note)
        if supernet is not None and supernet.get("cpu_s") is None and not note:
            # cpu_s covers the subnets' evaluation only; a supernet.json from before carries wall seconds only
            missing.append("the supernet's training CPU seconds (its supernet.json predates them)")
    predictor, note = _predictor_record(study)
    if note:
        missing.append(note)
    return SearchCompute(
        trials=trials,
        trained_trials=trained,
        epochs=epochs,
        steps=None if whole_split else steps,
        trial_wall_s=trial_wall,
        train_wall_s=train_wall if trained else None,
        trial_cpu_s=trial_cpu,
        supernet=supernet,
        predictor=predictor,
        missing=tuple(missing),
    )


def _predictor_record(study: StudyDir) -> tuple[dict[str, Any] | None, str]:
    """The CPU of a ``--predictor`` search's samples and NSGA-II (``predictor.json``; its re-scoring is
    in history.csv like any trial's). None without the file: not a predictor search."""
    path = study.predictor_json
    if not path.is_file():
        return None, ""
    try:
        data = json.loads(path.read_text())
        samples = data["samples"].get("cpu_s")
        nsga = data["search"]["cpu_s"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"{path} unreadable ({exc}): the predictor phase's CPU seconds are unknown"
    if not is_finite_number(samples) or not is_finite_number(nsga):
        # samples scored before their per-line cpu_s was kept: this run's share is not the whole
        return None, f"{path} predates the samples' total CPU seconds: the predictor phase is not in the compute"
    return {"samples_cpu_s": float(samples), "nsga_cpu_s": float(nsga), "cpu_s": float(samples) + float(nsga)}, ""


def _supernet_record(sn: SupernetSettings) -> tuple[dict[str, Any] | None, str]:
    rec: dict[str, Any] = {
        "path": sn.path,
        "epochs": sn.epoch,
        "steps_per_epoch": sn.steps_per_epoch,
        "members_per_step": 2 + int(sn.random_subnets) if sn.random_subnets is not None else None,
        "seconds": None,
    }
    if sn.steps_per_epoch is not None:
        rec["steps_at_most"] = sn.epoch * sn.steps_per_epoch
    folder = Path(sn.path).parent
    record = read_supernet_training(folder)
    if record is None:
        return rec, f"{folder / SUPERNET_JSON} not found: the supernet's training seconds are unknown"
    epochs = record["epochs"]
    rec["seconds"] = float(sum(float(e["seconds"]) for e in epochs))
    cpu = [e.get("cpu_s") for e in epochs]
    rec["cpu_s"] = float(sum(cpu)) if cpu and all(is_finite_number(v) and v >= 0 for v in cpu) else None
    rec["epochs_in_record"] = len(epochs)
    return rec, ""


# -- helpers -----------------------------------------------------------------------------------------
def describe_constraints(constraints: dict[str, float | None]) -> str:
    """``min_fps = 10, max_params = 2e+06`` or ``none``."""
    return ", ".join(f"{k} = {v:g}" for k, v in sorted(constraints.items()) if v is not None) or "none"


def _points(df: pd.DataFrame) -> np.ndarray:
    rows = df[df["feasible"].astype(bool)]
    pts = rows[["dice", "latency_ms"]].to_numpy(dtype=float)
    return pts[np.isfinite(pts).all(axis=1)] if len(pts) else np.zeros((0, 2))


def _best(df: pd.DataFrame) -> dict[str, Any] | None:
    rows = df[df["feasible"].astype(bool) & df["dice"].notna() & df["latency_ms"].notna()]
    if rows.empty:
        return None
    r = rows.sort_values(["dice", "latency_ms"], ascending=[False, True], kind="stable").iloc[0]
    paper = df[(df["name"] == "paper") & df["latency_ms"].notna()]
    speedup = float(paper["latency_ms"].iloc[0]) / float(r["latency_ms"]) if len(paper) else None
    return {"name": str(r["name"]), "dice": float(r["dice"]), "latency_ms": float(r["latency_ms"]), "speedup": speedup}


def _labels(roots: list[Path]) -> list[str]:
    names = [r.resolve().name for r in roots]
    return [n if names.count(n) == 1 else str(r) for n, r in zip(names, roots)]


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.integer):
        return int(value)
    return value
