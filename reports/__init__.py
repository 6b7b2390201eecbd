"""Reports for a study: Pareto fronts, hypervolume, plots, tables and one self-contained HTML page.

Compute the info, then draw it: :func:`pareto_front` gives a :class:`FrontInfo`, the ``*_info``
functions a :class:`ScatterInfo` per plot, :func:`compute_report` a :class:`ReportInfo`;
:func:`build_report` draws and writes them all into ``STUDY_DIR/report/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg_core import lazy_exports

if TYPE_CHECKING:  # the public names; loaded on first use (rtseg_core.lazy_exports)
    from reports._build import PLOT_KEYS, build_report, compute_report, report_summary
    from reports._build_compare import build_comparison
    from reports._compare import CompareInfo, PaperCheck, SearchCompute, StudyComparison, compare_studies, paper_check
    from reports._html import render_html
    from reports._hypervolume import HypervolumeHistory, default_reference, hypervolume, hypervolume_history
    from reports._info import ReportInfo
    from reports._load import (
        CANDIDATE_COLUMNS,
        candidates_frame,
        check_objectives,
        load_candidates,
        load_environment,
        load_history,
        load_study_settings,
        read_candidate,
        study_constraints,
        study_objectives,
    )
    from reports._pareto import FrontInfo, attainment_line, dominance_matrix, nondominated_ranks, pareto_front
    from reports._plot_info import (
        PAPER_PUBLISHED,
        REALTIME_BANDS,
        Arrow,
        Band,
        PublishedPoint,
        ScatterInfo,
        ValidatedMarks,
        dice_fps_info,
        dice_macs_info,
        dice_params_info,
        is_jetson_target,
        published_point_for,
    )
    from reports._plots import figure_bytes, plot_hypervolume_history, plot_scatter, save_figure
    from reports._rungs import RungComparison, RungInfo, compute_rungs
    from reports._select import ShipChoice, choose_model, meets_constraints
    from reports._ship import LatencyConditions, LatencyPair, ShipInfo, VersusPaper, latency_pairs, ship_info
    from reports._tables import candidates_table, display_table, to_markdown, write_tables
    from reports._units import dice_difference
    from reports._unlisted import UnlistedTrial, UnlistedTrials, unlisted_trials

__all__ = [
    "CANDIDATE_COLUMNS",
    "PAPER_PUBLISHED",
    "PLOT_KEYS",
    "REALTIME_BANDS",
    "Arrow",
    "Band",
    "CompareInfo",
    "FrontInfo",
    "HypervolumeHistory",
    "LatencyConditions",
    "LatencyPair",
    "PaperCheck",
    "PublishedPoint",
    "ReportInfo",
    "RungComparison",
    "RungInfo",
    "ScatterInfo",
    "SearchCompute",
    "ShipChoice",
    "ShipInfo",
    "StudyComparison",
    "UnlistedTrial",
    "UnlistedTrials",
    "ValidatedMarks",
    "VersusPaper",
    "attainment_line",
    "build_comparison",
    "build_report",
    "candidates_frame",
    "candidates_table",
    "check_objectives",
    "choose_model",
    "compare_studies",
    "compute_report",
    "compute_rungs",
    "default_reference",
    "dice_difference",
    "dice_fps_info",
    "dice_macs_info",
    "dice_params_info",
    "display_table",
    "dominance_matrix",
    "figure_bytes",
    "hypervolume",
    "hypervolume_history",
    "is_jetson_target",
    "latency_pairs",
    "load_candidates",
    "load_environment",
    "load_history",
    "load_study_settings",
    "meets_constraints",
    "nondominated_ranks",
    "paper_check",
    "pareto_front",
    "plot_hypervolume_history",
    "plot_scatter",
    "published_point_for",
    "read_candidate",
    "render_html",
    "report_summary",
    "save_figure",
    "ship_info",
    "study_constraints",
    "study_objectives",
    "to_markdown",
    "unlisted_trials",
    "write_tables",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
