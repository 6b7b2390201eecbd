"""Pieces every package of the suite shares: errors, atomic files, records, devices, the study folder,
objectives and feasibility.

Every name loads on first use (:func:`lazy_exports`, the helper every package façade uses), so the
CLI can import this package for its errors without paying for numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg_core._lazy import lazy_exports

if TYPE_CHECKING:  # the public names; loaded on first use (rtseg_core.lazy_exports)
    from rtseg_core._candidate import CandidateRecord
    from rtseg_core._device import resolve_device
    from rtseg_core._errors import (
        CompressionError,
        CompressionOptionError,
        ConfigError,
        DataError,
        InputFileError,
        OutputError,
        ProfilingError,
        RemoteProfilingError,
        SearchError,
        SearchOptionError,
        SettingsMismatchError,
        SuiteError,
    )
    from rtseg_core._io import (
        atomic_save_torch,
        atomic_write_bytes,
        atomic_write_json,
        atomic_write_text,
        read_json,
    )
    from rtseg_core._lazy import lazy_exports
    from rtseg_core._objectives import (
        CONSTRAINT_KEYS,
        DEFAULT_OBJECTIVES,
        DEPLOYMENT_SIZE,
        OBJECTIVES,
        Constraints,
        Objective,
        check_objectives,
        default_objective_pairs,
        is_feasible,
        parse_objectives,
        violations,
    )
    from rtseg_core._outputs import (
        check_output_dir,
        dataset_path,
        make_folder,
        mark_output,
        read_manifest,
        staged_output,
    )
    from rtseg_core._paired import (
        BETTER,
        COLLAPSE_DICE,
        INDISTINGUISHABLE,
        SINGLE_RUN,
        VERDICTS,
        WORSE,
        PairedDifference,
        SeedSummary,
        collapsed_classes,
        paired_difference,
        seed_summary,
    )
    from rtseg_core._pareto import (
        as_minimization,
        direction_sign,
        dominance_matrix,
        nondominated_mask,
        nondominated_ranks,
        pareto_indices,
    )
    from rtseg_core._rank import RankAgreement, kendall_tau, rank_agreement, spearman
    from rtseg_core._records import Record
    from rtseg_core._study import (
        CANDIDATE_JSON,
        CHECKPOINT,
        COMPRESSED,
        CONFIG_JSON,
        MEASUREMENT_JSON,
        METRICS_JSON,
        TRIALS,
        VALIDATED,
        StudyDir,
        read_candidate,
        read_training_metrics,
        read_validation,
        study_objectives,
        write_candidate,
        write_training_metrics,
        write_validation,
    )
    from rtseg_core._text import text_table
    from rtseg_core._threads import (
        THREADS_HELP,
        configure_process,
        default_threads,
        resolve_threads,
        torch_threads,
        usable_cores,
    )

__all__ = [
    "BETTER",
    "COLLAPSE_DICE",
    "INDISTINGUISHABLE",
    "SINGLE_RUN",
    "VERDICTS",
    "WORSE",
    "PairedDifference",
    "SeedSummary",
    "collapsed_classes",
    "paired_difference",
    "seed_summary",
    "CANDIDATE_JSON",
    "CHECKPOINT",
    "COMPRESSED",
    "CONFIG_JSON",
    "MEASUREMENT_JSON",
    "METRICS_JSON",
    "TRIALS",
    "VALIDATED",
    "as_minimization",
    "check_output_dir",
    "dataset_path",
    "direction_sign",
    "dominance_matrix",
    "make_folder",
    "mark_output",
    "nondominated_mask",
    "nondominated_ranks",
    "pareto_indices",
    "read_manifest",
    "staged_output",
    "lazy_exports",
    "CONSTRAINT_KEYS",
    "DEFAULT_OBJECTIVES",
    "DEPLOYMENT_SIZE",
    "OBJECTIVES",
    "CandidateRecord",
    "Constraints",
    "Objective",
    "StudyDir",
    "CompressionError",
    "CompressionOptionError",
    "ConfigError",
    "DataError",
    "InputFileError",
    "OutputError",
    "ProfilingError",
    "RankAgreement",
    "Record",
    "RemoteProfilingError",
    "SearchError",
    "SearchOptionError",
    "SettingsMismatchError",
    "SuiteError",
    "atomic_save_torch",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
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

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
