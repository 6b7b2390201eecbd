"""The validated part of a report: candidates retrained at a full budget (``run.py validate``).

Read from ``STUDY_DIR/validated/<name>/candidate.json`` (``source="validated"``, test split) and
``trained.json`` beside it (the proxy Dice the search gave the same architecture). Kept apart
from the proxy candidates: their Dice comes from full training on the test split, the proxy
front's from a few epochs on the validation split, and the two must never share one front.

:func:`compute_validated` returns ``None`` when the study has no validated record, so the report
shows the section only when there is something in it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports._load import candidates_frame
from reports._pareto import FrontInfo, pareto_front
from rtseg_core import ConfigError, RankAgreement, StudyDir, finite_or_none, rank_agreement, read_json
from rtseg_core._study import VALIDATED

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


def compute_validated(
    study_dir: str | os.PathLike, objectives: tuple[tuple[str, str], ...], *, seed: int = 0
) -> ValidatedInfo | None:
    """The validated section's contents, or ``None`` when nothing was validated."""
    study_dir = Path(study_dir)
    df = load_validated(study_dir)
    if df.empty:
        return None
    proxy: dict[str, float | None] = {}
    budget: dict[str, Any] = {}
    for name in df["name"]:
        path = study_dir / "validated" / str(name) / "trained.json"
        trained = read_json(path) if path.is_file() else {}
        proxy[str(name)] = finite_or_none((trained.get("candidate") or {}).get("proxy_dice"))
        budget = budget or dict(trained.get("budget") or {})
        reapplied = study_dir / "validated" / str(name) / "reapplied.json"  # a compressed variant
        if not trained and reapplied.is_file():
            proxy[str(name)] = finite_or_none((read_json(reapplied).get("variant") or {}).get("proxy_dice"))
    # Rank agreement over architectures only: a variant's "proxy" Dice comes from another recipe.
    arch = [n == p or not isinstance(p, str) for n, p in zip(df["name"], df["parent"])]
    pairs = [
        (proxy[str(n)], d)
        for n, d, a in zip(df["name"], df["dice"], arch)
        if a and proxy[str(n)] is not None and finite_or_none(d) is not None
    ]
    agreement = None
    if len(pairs) >= 3:
        agreement = rank_agreement(
            [a for a, _ in pairs], [float(b) for _, b in pairs], seed=seed, a_label="proxy val Dice",
            b_label="full-budget test Dice",
        )  # fmt: skip
    latency_path = study_dir / "validated" / "latency.json"
    latency = read_json(latency_path) if latency_path.is_file() else {}
    latency.pop("candidates", None)
    return ValidatedInfo(
        candidates=df,
        front=pareto_front(df, objectives),
        proxy_dice=proxy,
        agreement=agreement,
        budget=budget,
        latency=latency,
    )


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
