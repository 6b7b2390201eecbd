"""What a report shows, computed before anything is drawn: one record that the HTML page and the files share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from reports._hypervolume import HypervolumeHistory
from reports._pareto import FrontInfo
from reports._plot_info import ScatterInfo
from reports._remeasured import RemeasuredInfo
from reports._rungs import RungInfo
from reports._select import ShipChoice
from reports._ship import LatencyPair, ShipInfo
from reports._unlisted import UnlistedTrials
from reports._validated import ValidatedInfo
from rtseg_core import StudySettings


@dataclass(frozen=True)
class ReportInfo:
    """Everything a report shows, before anything is drawn or written."""

    study_dir: Path
    title: str
    settings: StudySettings | None  # study.json as read (None if absent)
    objectives: tuple[tuple[str, str], ...]
    constraints: dict[str, float | None]
    candidates: pd.DataFrame  # load_candidates()
    front: FrontInfo  # over the study objectives
    plots: tuple[ScatterInfo, ...]  # dice_fps, dice_macs, dice_params
    hypervolume: HypervolumeHistory
    choice: ShipChoice
    environment: dict[str, Any]
    synthetic: bool  # some accuracy was measured on synthetic data
    remeasured: RemeasuredInfo | None = None  # issue 12: PREDICTED vs MEASURED; None without predictions
    reference: dict[str, Any] = dataclasses.field(default_factory=dict)  # reference.json, shown apart
    validated: ValidatedInfo | None = None  # issue 11: run.py validate's records, shown apart; None if none
    ship_basis: str = "proxy"  # "validated" when the choice comes from validated candidates
    rungs: RungInfo | None = None  # issue 11: rank at each multi-fidelity rung; None without per-rung Dice
    ship: ShipInfo | None = None  # issue 21: the pick said in full (conditions, vs paper, file, export command)
    latency_pairs: tuple[LatencyPair, ...] = ()  # models timed both by the search and by validate's run
    unlisted: UnlistedTrials | None = None  # search trials without a candidate row (early-stopped, rejected, ...)

    @property
    def plot_keys(self) -> tuple[str, ...]:
        return (*(p.key for p in self.plots), "hypervolume")
