"""Full-budget validation of a search's answer (``rtseg-nas validate``), above the searches and compression.

A search ranks architectures by a proxy; this stage retrains the proxy front, ``paper`` and the
parents of the study's compressed variants from scratch with one recipe, evaluates them on the
test split, re-applies each compressed variant's recipe to its validated parent, and times every
validated graph on the study's target in one comparable run. Several workers share the work
through the study's storage. :func:`remeasure_front` is the latency half of the same check for a
search that ran on a predicted latency.

Modules, bottom to top: ``_config`` (:class:`ValidateConfig`, :class:`Candidate`), ``_train``
(one candidate's training and its record), ``_variants`` (re-applied compressed variants),
``_graphs`` (the graphs to time and their latency run), ``_queue`` (claims and workers:
:func:`run_validate`), ``_remeasure`` (:func:`remeasure_front`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg_core import lazy_exports

if TYPE_CHECKING:  # the public names; loaded on first use (rtseg_core.lazy_exports)
    from validate._config import Candidate, ValidateConfig, parse_seeds
    from validate._graphs import LatencyRun, TimedGraph, TimingEntry, time_entries
    from validate._queue import ValidateSummary, run_validate, select_candidates
    from validate._remeasure import remeasure_front
    from validate._variants import VariantPlan, find_variants

__all__ = [
    "Candidate",
    "LatencyRun",
    "TimedGraph",
    "TimingEntry",
    "time_entries",
    "ValidateConfig",
    "ValidateSummary",
    "VariantPlan",
    "find_variants",
    "parse_seeds",
    "remeasure_front",
    "run_validate",
    "select_candidates",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
