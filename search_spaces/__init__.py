"""The search space over the RTSeg-Net family and the searches over it (Optuna multi-objective).

The family itself lives in :mod:`models`; this package sits above :mod:`segmentation` and
:mod:`profiling` and drives them: each trial is profiled, proxy-trained and evaluated.

Modules, bottom to top: ``_space`` (the space), ``_early_stop`` (the rule), ``_study`` (Optuna
storage and stored trials), ``_config`` and ``_supernet_config`` (:class:`SearchConfig`,
:class:`SupernetSearchConfig` and their parts), ``_results`` (:class:`SearchSummary`), ``_files``
(history.csv and the study files), ``_driver`` (:class:`StudyDriver`, the one search loop),
``_trial`` (one trial of the multi-trial search), ``_runner`` (:func:`run_search`),
``_supernet_search`` (:func:`run_supernet_search`, the one-shot search). Objectives, constraints
and feasibility are the suite's, from :mod:`rtseg_core`.

The names below are loaded on first use (PEP 562): ``rtseg-nas search --help`` takes its
defaults from :mod:`search_spaces._config`, which is light, and must not pay for torch, Optuna
and ONNX Runtime by importing the rest of the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg_core import lazy_exports

if TYPE_CHECKING:  # the same names, imported for type checkers and readers
    from rtseg_core import OBJECTIVES, Constraints, Objective, parse_objectives
    from search_spaces._accuracy_predictor import AccuracyPredictor, fit_accuracy_predictor, holdout_mask
    from search_spaces._config import (
        SAMPLERS,
        STORED,
        ObjectiveOptions,
        ProfilingOptions,
        ProxyTraining,
        SearchConfig,
        StrategyOptions,
        StudyOptions,
        WorkerOptions,
    )
    from search_spaces._driver import StudyDriver
    from search_spaces._early_stop import EarlyStopRule, Reference, StopDecision, should_stop
    from search_spaces._fidelity import FidelitySchedule
    from search_spaces._oneshot import (
        NSGARun,
        PredictorOptions,
        PredictorSearchResult,
        predictor_nsga,
        run_predictor_search,
    )
    from search_spaces._optuna_setup import quiet_optuna
    from search_spaces._results import FrontMember, SearchSummary, SupernetSearchSummary
    from search_spaces._runner import run_search
    from search_spaces._space import (
        SearchSpace,
        check_config,
        config_from_params,
        input_size_of,
        params_from_config,
        suggest_config,
        summarize_config,
    )
    from search_spaces._study import REFERENCE_ATTR, feasible_front, make_storage, resolve_storage_url, trial_name
    from search_spaces._supernet import (
        SandwichConfig,
        Supernet,
        calibration_batches,
        extract_subnet,
        largest_config,
        load_supernet,
        random_config,
        smallest_config,
        train_supernet,
    )
    from search_spaces._supernet_config import SubnetEvaluation, SubnetSampling, SupernetSearchConfig
    from search_spaces._supernet_search import SubnetEvaluator, run_supernet_search
    from search_spaces._trial import TrialSteps


__all__ = [
    "input_size_of",
    "FidelitySchedule",
    "AccuracyPredictor",
    "PredictorOptions",
    "PredictorSearchResult",
    "fit_accuracy_predictor",
    "holdout_mask",
    "run_predictor_search",
    "NSGARun",
    "predictor_nsga",
    "SubnetEvaluator",
    "REFERENCE_ATTR",
    "calibration_batches",
    "feasible_front",
    "make_storage",
    "quiet_optuna",
    "random_config",
    "resolve_storage_url",
    "trial_name",
    "OBJECTIVES",
    "SAMPLERS",
    "STORED",
    "Constraints",
    "EarlyStopRule",
    "FrontMember",
    "Objective",
    "ObjectiveOptions",
    "ProfilingOptions",
    "ProxyTraining",
    "Reference",
    "SearchConfig",
    "SearchSpace",
    "SearchSummary",
    "SandwichConfig",
    "StudyDriver",
    "SubnetEvaluation",
    "SubnetSampling",
    "Supernet",
    "SupernetSearchConfig",
    "SupernetSearchSummary",
    "StopDecision",
    "StrategyOptions",
    "StudyOptions",
    "TrialSteps",
    "WorkerOptions",
    "check_config",
    "config_from_params",
    "extract_subnet",
    "largest_config",
    "load_supernet",
    "params_from_config",
    "parse_objectives",
    "run_search",
    "run_supernet_search",
    "should_stop",
    "smallest_config",
    "suggest_config",
    "summarize_config",
    "train_supernet",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
