"""How rank changes with budget in a multi-fidelity study (issue 11): the Dice of every trial at every rung.

Read from ``history.csv``'s ``rung_dice`` column (``epochs:dice;...``, the val Dice each trial had
when it finished each rung's epoch, as the search's rung rule saw it, 4 decimals) and, where the
study was validated, from ``validated/*/candidate.json`` (full-budget test Dice). Nothing else:
the report reads files only.

Ranks: at each rung, the trials that reached it are ranked by their Dice there, best = 1, ties
ordered by trial number (so every trial has its own place on the chart). At the full budget the
validated trials are ranked the same way by test Dice. Agreement between two budgets is Kendall
tau-b and Spearman (:func:`rtseg_core.rank_agreement`, percentile bootstrap over trials) on the
trials that have both values; with fewer than 3 such trials it is "too few". Only promoted trials
reach the next rung, so the rung-to-rung comparison covers the promoted ones only.

:func:`compute_rungs` returns ``None`` when no trial has per-rung Dice (a fixed-budget study), so
the report shows the section only when there is something in it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reports._load import read_history_csv, require_columns
from rtseg_core import (
    MULTI_FIDELITY,
    ConfigError,
    RankAgreement,
    StudyDir,
    StudySettings,
    finite_or_none,
    rank_agreement,
)

FULL = "full"  # the x position after the last rung: full budget, validated, test split
MIN_PAIRS = 3  # rank_agreement needs 3 trials with both values


@dataclass(frozen=True)
class RungComparison:
    """One budget against a later one, over the trials that have Dice at both."""

    rung: int  # epochs
    against: str  # "rung 3 ep" or "full budget (validated, test)"
    n: int  # trials with both values
    agreement: RankAgreement | None  # None when n < MIN_PAIRS

    def to_dict(self) -> dict[str, Any]:
        a = self.agreement
        return {
            "rung_epochs": self.rung,
            "against": self.against,
            "n": self.n,
            "status": "ok" if a is not None else f"too few (n = {self.n} < {MIN_PAIRS})",
            "kendall_tau": finite_or_none(a.kendall_tau) if a else None,
            "kendall_low": finite_or_none(a.kendall_low) if a else None,
            "kendall_high": finite_or_none(a.kendall_high) if a else None,
            "spearman": finite_or_none(a.spearman) if a else None,
            "spearman_low": finite_or_none(a.spearman_low) if a else None,
            "spearman_high": finite_or_none(a.spearman_high) if a else None,
        }


@dataclass(frozen=True)
class RungInfo:
    """Every trial's Dice and rank at every rung, the validated full-budget ranks, and the agreement table."""

    rungs: tuple[int, ...]  # epochs, increasing
    eta: int | None
    ranks: pd.DataFrame  # long: number, name, state, budget ("1", "3", ..., FULL), dice, rank, n_at_budget
    reached: dict[int, int]  # rung -> trials that reached it
    next_rung: tuple[RungComparison, ...]  # rung i vs rung i+1 (one per rung but the last)
    full_budget: tuple[RungComparison, ...]  # rung i vs validated test Dice (empty without validated records)
    validated: tuple[str, ...]  # names of the validated trials on the chart
    source: str

    @property
    def has_full(self) -> bool:
        return bool(self.validated)

    def table(self) -> pd.DataFrame:
        """One row per rung: n that reached it, agreement with the next rung and with the full budget."""
        rows = []
        nxt = {c.rung: c for c in self.next_rung}
        full = {c.rung: c for c in self.full_budget}
        for r in self.rungs:
            row: dict[str, Any] = {"rung_epochs": r, "n_reached": self.reached.get(r, 0)}
            for prefix, comp in (("next", nxt.get(r)), ("full", full.get(r))):
                d = comp.to_dict() if comp is not None else {}
                row[f"{prefix}_against"] = d.get("against", "")
                row[f"{prefix}_n"] = d.get("n")
                row[f"{prefix}_status"] = d.get("status", "n/a")
                for key in ("kendall_tau", "kendall_low", "kendall_high", "spearman", "spearman_low", "spearman_high"):
                    row[f"{prefix}_{key}"] = d.get(key)
            rows.append(row)
        out = pd.DataFrame(rows)
        for col in ("next_n", "full_n"):
            out[col] = out[col].astype("Int64")  # counts stay integers beside the empty last rung
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "rungs_epochs": list(self.rungs),
            "eta": self.eta,
            "source": self.source,
            "rank_rule": "rank by Dice at the budget among the trials that reached it, best = 1, ties by trial number",
            "reached": {str(k): v for k, v in self.reached.items()},
            "validated_on_chart": list(self.validated),
            "next_rung": [c.to_dict() for c in self.next_rung],
            "full_budget": [c.to_dict() for c in self.full_budget],
        }


def parse_rung_dice(text: Any, *, where: str) -> dict[int, float]:
    """``"1:0.4123;3:0.6011"`` -> ``{1: 0.4123, 3: 0.6011}``; ``{}`` for an empty cell."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
        return {}
    out: dict[int, float] = {}
    for part in str(text).split(";"):
        epochs, sep, dice = part.partition(":")
        try:
            if not sep:
                raise ValueError
            e, d = int(epochs), float(dice)
        except ValueError:
            raise ConfigError(f"{where}: 'rung_dice' must read like 1:0.4123;3:0.6011, got {text!r}") from None
        if e < 1 or not math.isfinite(d):
            raise ConfigError(f"{where}: 'rung_dice' has an invalid entry {part!r} (epochs >= 1, finite Dice)")
        out[e] = d
    return out


def compute_rungs(
    study_dir: str | os.PathLike,
    settings: StudySettings | None,
    validated: pd.DataFrame | None = None,
    *,
    seed: int = 0,
) -> RungInfo | None:
    """The section's contents, or ``None`` when no trial of the study has per-rung Dice.

    ``validated``: the validated candidates (``reports._validated.load_validated``), or None.
    """
    study = StudyDir(study_dir)
    path = study.history_csv
    if not path.is_file():
        return None
    raw = read_history_csv(path, dtype={"rung_dice": str})
    if "rung_dice" not in raw.columns:
        return None
    require_columns(raw, path, ("number", "name"))
    trials: list[dict[str, Any]] = []
    for i, row in raw.iterrows():
        rd = parse_rung_dice(row["rung_dice"], where=f"{path}: row {i + 2} (trial {row['number']})")
        if rd:
            state = str(row.get("state", "")).rsplit(".", 1)[-1].upper()
            trials.append({"number": int(row["number"]), "name": str(row["name"]), "state": state, "dice": rd})
    if not trials:
        return None
    proxy = settings.search.proxy_training if settings is not None and settings.strategy == MULTI_FIDELITY else None
    fidelity = proxy.fidelity if proxy is not None else ()
    rungs = tuple(sorted(set(fidelity) | {e for t in trials for e in t["dice"]}))
    eta = proxy.eta if proxy is not None else None

    rows = []
    for r in rungs:
        at = sorted((t for t in trials if r in t["dice"]), key=lambda t: (-t["dice"][r], t["number"]))
        for place, t in enumerate(at, start=1):
            rows.append(_rank_row(t, str(r), t["dice"][r], place, len(at)))
    full: dict[int, float] = {}  # trial number -> validated test Dice
    if validated is not None and len(validated):
        # By name only: a retrained trial keeps its name ("trial-7"); a compressed variant of it
        # ("trial-7.p50") shares its parent and trial number but is another model.
        by_name = {t["name"]: t for t in trials}
        for v in validated.itertuples(index=False):
            t = by_name.get(str(v.name))
            if t is not None and finite_or_none(v.dice) is not None:
                full[t["number"]] = float(v.dice)
    if full:
        at = sorted((t for t in trials if t["number"] in full), key=lambda t: (-full[t["number"]], t["number"]))
        for place, t in enumerate(at, start=1):
            rows.append(_rank_row(t, FULL, full[t["number"]], place, len(at)))
    ranks = pd.DataFrame(rows, columns=["number", "name", "state", "budget", "dice", "rank", "n_at_budget"])

    next_rung = []
    for r, r_next in zip(rungs, rungs[1:]):
        both = [t for t in trials if r in t["dice"] and r_next in t["dice"]]
        pairs = [(t["dice"][r], t["dice"][r_next]) for t in both]
        next_rung.append(
            _compare(r, f"rung {r_next} ep", pairs, seed, f"val Dice at {r} ep", f"val Dice at {r_next} ep")
        )
    full_budget = []
    if full:
        for r in rungs:
            pairs = [(t["dice"][r], full[t["number"]]) for t in trials if r in t["dice"] and t["number"] in full]
            full_budget.append(
                _compare(
                    r, "full budget (validated, test)", pairs, seed, f"val Dice at {r} ep", "full-budget test Dice"
                )
            )
    names = {t["number"]: t["name"] for t in trials}
    return RungInfo(
        rungs=rungs,
        eta=eta,
        ranks=ranks,
        reached={r: sum(1 for t in trials if r in t["dice"]) for r in rungs},
        next_rung=tuple(next_rung),
        full_budget=tuple(full_budget),
        validated=tuple(names[n] for n in sorted(full)),
        source=f"{path.name} (column rung_dice)" + (" and validated/*/candidate.json" if full else ""),
    )


def _rank_row(t: dict[str, Any], budget: str, dice: float, rank: int, n: int) -> dict[str, Any]:
    return {"number": t["number"], "name": t["name"], "state": t["state"], "budget": budget, "dice": dice,
            "rank": rank, "n_at_budget": n}  # fmt: skip


def _compare(rung: int, against: str, pairs: list[tuple[float, float]], seed: int, a: str, b: str) -> RungComparison:
    agreement = None
    if len(pairs) >= MIN_PAIRS:
        agreement = rank_agreement([p[0] for p in pairs], [p[1] for p in pairs], seed=seed, a_label=a, b_label=b)
    return RungComparison(rung=rung, against=against, n=len(pairs), agreement=agreement)
