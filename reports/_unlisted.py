"""The search's trials that have no row in the candidate table, and why.

Only a trial that finished writes ``trials/<n>/candidate.json``; one stopped early (the early-stop
rule or a multi-fidelity rung), rejected before training (a constraint broken by its cost alone),
failed or still running has none, so the report's tables would leave it out without a word. They
are counted from ``history.csv`` (its ``state`` and ``reason`` columns) so the page can say so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from reports._load import read_history_csv
from rtseg_core import StudyDir

OUTCOMES = ("early-stopped", "rejected", "failed", "unfinished", "complete, no candidate.json")


@dataclass(frozen=True)
class UnlistedTrial:
    number: int
    name: str
    outcome: str  # one of OUTCOMES
    reason: str  # history.csv's reason ("" when it gives none)


@dataclass(frozen=True)
class UnlistedTrials:
    """Trials in ``history.csv`` without a candidate row; ``source`` says what was read."""

    trials: tuple[UnlistedTrial, ...]
    source: str

    def counts(self) -> dict[str, int]:
        return {o: n for o in OUTCOMES if (n := sum(t.outcome == o for t in self.trials))}

    def note(self) -> str:
        """One sentence for the page ("" when every trial is listed)."""
        if not self.trials:
            return ""
        parts = ", ".join(f"{n} {o}" for o, n in self.counts().items())
        return (
            f"{len(self.trials)} trial(s) of the search are not in this table because they wrote no candidate "
            f"record: {parts} (from {self.source}; listed below)."
        )

    def to_dict(self) -> dict:
        return {"counts": self.counts(), "trials": [vars(t) for t in self.trials], "source": self.source}


def unlisted_trials(study_dir: str | os.PathLike, candidates: pd.DataFrame) -> UnlistedTrials:
    """Trials of ``history.csv`` whose number no trial or reference row of ``candidates`` carries."""
    study = StudyDir(study_dir)
    path = study.history_csv
    if not path.is_file():
        return UnlistedTrials((), "no history.csv")
    hist = read_history_csv(path, dtype=str, keep_default_na=False)
    if "number" not in hist.columns:  # load_history names this error when the hypervolume reads the file
        return UnlistedTrials((), f"{path.name} (no 'number' column)")
    searched = candidates[candidates["source"].isin(["trial", "reference"])] if len(candidates) else candidates
    listed = {int(t) for t in searched["trial"].dropna()} if len(searched) else set()
    out = []
    for r in hist.to_dict("records"):
        try:
            number = int(r["number"])
        except ValueError:
            continue
        if number in listed:
            continue
        state = str(r.get("state", "")).rsplit(".", 1)[-1].upper()
        reason = str(r.get("reason", "") or "")
        if state == "PRUNED":
            outcome = "rejected" if reason.startswith("rejected") else "early-stopped"
        elif state == "FAIL":
            outcome = "failed"
        elif state == "COMPLETE":
            outcome = "complete, no candidate.json"
        else:
            outcome = "unfinished"
        out.append(UnlistedTrial(number, str(r.get("name") or f"trial-{number}"), outcome, reason))
    return UnlistedTrials(tuple(out), path.name)
