"""The validated part of a report: candidates retrained at a full budget (``run.py validate``).

Read from ``STUDY_DIR/validated/<name>/candidate.json`` (``source="validated"``, test split) and
the stage's ``validated/summary.json`` (the proxy Dice the search gave each model and the rank
agreement of proxy and full-budget Dice, as the stage computed it) through
:class:`rtseg_core.StudyDir`. Kept apart
from the proxy candidates: their Dice comes from full training on the test split, the proxy
front's from a few epochs on the validation split, and the two must never share one front.

:func:`compute_validated` returns ``None`` when the study has no validated record, so the report
shows the section only when there is something in it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reports._load import candidates_frame
from reports._pareto import FrontInfo, pareto_front
from rtseg_core import VALIDATED, ConfigError, RankAgreement, SeedStats, SpeedRatio, StudyDir, finite_or_none

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidatedInfo:
    """Validated candidates, their own front, and how well the proxy ranked them."""

    candidates: pd.DataFrame  # candidates_frame() of the validated records
    front: FrontInfo  # over the study objectives, validated records only
    proxy_dice: dict[str, float | None]  # name -> the proxy Dice the search measured
    agreement: RankAgreement | None  # proxy Dice vs full-budget test Dice; None with fewer than 3 pairs
    budget: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)  # validated/latency.json (conditions of the one run)
    seeds: tuple[int, ...] = ()  # the training seeds (validate --seeds)
    models: dict[str, SeedStats] = field(default_factory=dict)  # name -> per seed, over seeds, paired vs paper
    # name -> median(paper) / median(model) from validate's one timing run, with its interval over the
    # run's paired rounds (None: an estimate, a prediction, or a summary from before the interval)
    speed: dict[str, SpeedRatio | None] = field(default_factory=dict)
    # name -> 95 % bootstrap interval (low, high) of the model's median latency over the same rounds
    latency_interval: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    def paired(self) -> pd.DataFrame:
        """One row per validated model: seeds, mean Dice and its 95 % interval, the paired difference with paper.

        As the stage computed them (``validated/summary.json``); empty for a summary written before
        ``validate --seeds``. Differences are Dice fractions (the page prints points).
        """
        cols = ["name", "n seeds", "mean Dice", "Dice low", "Dice high", "vs paper", "vs paper low",
                "vs paper high", "verdict", "collapsed seeds", "speed vs paper", "speed low", "speed high"]  # fmt: skip
        rows = []
        for name in sorted(self.models, key=lambda n: (n != "paper", n)):
            m = self.models[name]
            d, vp, sp = m.dice, m.vs_paper, self.speed.get(name)
            rows.append([
                name, len(m.runs), None if d is None else d.mean, None if d is None else d.low,
                None if d is None else d.high, None if vp is None else vp.mean, None if vp is None else vp.low,
                None if vp is None else vp.high, "reference" if name == "paper" else (vp.verdict if vp else "-"),
                list(m.collapsed_seeds), None if sp is None else sp.ratio, None if sp is None else sp.low,
                None if sp is None else sp.high,
            ])  # fmt: skip
        return pd.DataFrame(rows, columns=cols)

    def several_seeds(self) -> bool:
        return len(self.seeds) > 1

    def comparison(self) -> pd.DataFrame:
        """One row per validated candidate: proxy Dice, test Dice, their rank under each, latency, front membership."""
        df = self.candidates
        proxy = [self.proxy_dice.get(n) for n in df["name"]]
        out = pd.DataFrame(
            {
                "name": df["name"],
                "proxy Dice (val)": proxy,
                "full Dice (test)": df["dice"],
                "proxy rank": pd.Series(proxy, dtype=float).rank(ascending=False, method="min").to_numpy(),
                "full rank": df["dice"].rank(ascending=False, method="min").to_numpy(),
                "latency ms": df["latency_ms"],
                "params": df["params"],
                "validated front": df["name"].isin(set(self.front.front["name"])),
                # compressed variants re-applied to a validated parent (empty for architectures)
                "variant of": [p if p != n else "" for n, p in zip(df["name"], df["parent"].fillna(df["name"]))],
                "precision": df["precision"],
            }
        )
        return out.sort_values("full Dice (test)", ascending=False, kind="stable").reset_index(drop=True)


def load_validated(study_dir: str | os.PathLike) -> pd.DataFrame:
    """Every ``validated/*/candidate.json`` as a candidate table (empty when there is none)."""
    found = StudyDir(study_dir).read_candidates((VALIDATED,))
    wrong = [str(folder) for r, folder in found if r.source != "validated"]
    if wrong:
        raise ConfigError(f"{wrong[0]}/candidate.json: expected source 'validated' in the validated folder")
    return candidates_frame([r for r, _ in found])


def compute_validated(study_dir: str | os.PathLike, objectives: tuple[tuple[str, str], ...]) -> ValidatedInfo | None:
    """The validated section's contents, or ``None`` when nothing was validated.

    The budget, the proxy Dice of each validated model and the rank agreement are the stage's own
    result (``validated/summary.json``), shown as the stage computed them; validated records without
    that file (a validate run stopped before its end) are an error that says to finish it.
    """
    study = StudyDir(study_dir)
    df = load_validated(study.root)
    if df.empty:
        return None
    summary = study.read_validated_summary()
    if summary is None:
        raise ConfigError(
            f"{study.validated_summary_json}: not found, but {study.validated_dir} holds validated records; a validate "
            f"run stopped before its end: run `python run.py validate --study {study.root}` again to finish it"
        )
    latency = study.read_validated_latency()
    rows = {} if latency is None else latency.candidates
    where = str(study.validated_latency_json) if latency is not None else ""
    speed = {str(n): SpeedRatio.read(rows.get(str(n), {}).get("vs_paper"), source=f"{where}: {n}") for n in df["name"]}
    return ValidatedInfo(
        candidates=df,
        front=pareto_front(df, objectives),
        proxy_dice={str(n): summary.proxy_dice.get(str(n)) for n in df["name"]},
        agreement=summary.agreement,
        budget=dict(summary.budget),
        latency={} if latency is None else {"kind": latency.kind, "target": latency.target, **latency.conditions},
        seeds=summary.train_seeds,
        models=dict(summary.models),
        speed=speed,
        latency_interval={str(n): _interval(rows.get(str(n), {}).get("median_interval_ms")) for n in df["name"]},
    )


def _interval(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, list) or len(value) != 2 or not all(finite_or_none(v) is not None for v in value):
        return None
    return float(value[0]), float(value[1])


VALIDATED_BASIS = (
    "recommended from VALIDATED candidates: retrained from scratch at the full budget (compressed variants: "
    "their recipe re-applied to the validated parent), Dice on the test split, latencies from one run over every "
    "candidate on one target"
)
PROXY_BASIS = (
    "PROXY-ONLY recommendation: no candidate has been validated, so these Dice values come from short proxy "
    "training on the validation split and may not hold after full training; run `python run.py validate "
    "--study {study}` to check them"
)


def choose_for_shipping(
    candidates: pd.DataFrame, validated: ValidatedInfo | None, constraints: dict[str, float | None], *, study: str
):
    """``(ShipChoice, basis)``: from the validated candidates when any exist, else from the proxy ones, saying so."""
    from dataclasses import replace

    from reports._select import choose_model

    if validated is not None:
        choice = choose_model(validated.candidates, constraints)
        return replace(choice, notes=(VALIDATED_BASIS, *choice.notes)), "validated"
    choice = choose_model(candidates, constraints)
    return replace(choice, notes=(PROXY_BASIS.format(study=study), *choice.notes)), "proxy"
