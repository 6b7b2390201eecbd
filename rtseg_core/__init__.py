"""Pieces every package of the suite shares: errors, atomic files, records, devices, the study folder,
objectives and feasibility.

The non-dominated sort is in :mod:`rtseg_core._pareto` (not re-exported here: it needs numpy, and the
CLI imports this package for its errors only).
"""

from rtseg_core._candidate import CandidateRecord
from rtseg_core._device import resolve_device
from rtseg_core._errors import (
    CompressionError,
    ConfigError,
    DataError,
    OutputError,
    ProfilingError,
    RemoteProfilingError,
    SearchError,
    SuiteError,
)
from rtseg_core._fields import Field, is_finite_number
from rtseg_core._io import (
    atomic_save_torch,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_torch_data,
    parse_json,
    read_json,
)
from rtseg_core._leftovers import owner_tag, remove_stale_scratch, remove_stale_siblings, scratch_dir
from rtseg_core._objectives import (
    CONSTRAINT_KEYS,
    DEFAULT_OBJECTIVES,
    OBJECTIVES,
    Constraints,
    Objective,
    check_objectives,
    default_objective_pairs,
    is_feasible,
    parse_objectives,
    violations,
)
from rtseg_core._rank import RankAgreement, kendall_tau, rank_agreement, spearman
from rtseg_core._records import Record
from rtseg_core._study import (
    StudyDir,
    read_candidate,
    read_training_metrics,
    read_validation,
    study_objectives,
    write_candidate,
    write_training_metrics,
    write_validation,
)
from rtseg_core._text import brief, text_table
from rtseg_core._threads import (
    THREADS_HELP,
    check_threads,
    configure_process,
    default_threads,
    resolve_threads,
    torch_threads,
    usable_cores,
)

__all__ = [
    "CONSTRAINT_KEYS",
    "DEFAULT_OBJECTIVES",
    "OBJECTIVES",
    "CandidateRecord",
    "Constraints",
    "Objective",
    "StudyDir",
    "CompressionError",
    "Field",
    "ConfigError",
    "DataError",
    "OutputError",
    "ProfilingError",
    "RankAgreement",
    "Record",
    "RemoteProfilingError",
    "SearchError",
    "SuiteError",
    "atomic_save_torch",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "brief",
    "check_threads",
    "is_finite_number",
    "load_torch_data",
    "owner_tag",
    "parse_json",
    "remove_stale_scratch",
    "remove_stale_siblings",
    "scratch_dir",
    "check_objectives",
    "default_objective_pairs",
    "is_feasible",
    "parse_objectives",
    "read_candidate",
    "kendall_tau",
    "rank_agreement",
    "text_table",
    "read_json",
    "read_training_metrics",
    "read_validation",
    "resolve_device",
    "study_objectives",
    "violations",
    "write_candidate",
    "write_training_metrics",
    "write_validation",
    "spearman",
    "THREADS_HELP",
    "configure_process",
    "default_threads",
    "resolve_threads",
    "torch_threads",
    "usable_cores",
]
