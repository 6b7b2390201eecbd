"""The search space over the RTSeg-Net family and the searches over it (Optuna multi-objective).

The family itself lives in :mod:`models`; this package sits above :mod:`segmentation` and
:mod:`profiling` and drives them: each trial is profiled, proxy-trained and evaluated.
"""

from search_spaces._early_stop import EarlyStopRule, Reference, StopDecision, should_stop
from search_spaces._objectives import OBJECTIVES, Constraints, Objective, parse_objectives
from search_spaces._search import SAMPLERS, FrontMember, SearchConfig, SearchSummary, run_search
from search_spaces._space import (
    SearchSpace,
    check_config,
    config_from_params,
    params_from_config,
    suggest_config,
    summarize_config,
)
from search_spaces._supernet import (
    SandwichConfig,
    Supernet,
    extract_subnet,
    largest_config,
    load_supernet,
    smallest_config,
    train_supernet,
)
from search_spaces._supernet_search import SupernetSearchConfig, SupernetSearchSummary, run_supernet_search

__all__ = [
    "OBJECTIVES",
    "SAMPLERS",
    "Constraints",
    "EarlyStopRule",
    "FrontMember",
    "Objective",
    "Reference",
    "SearchConfig",
    "SearchSpace",
    "SearchSummary",
    "SandwichConfig",
    "Supernet",
    "SupernetSearchConfig",
    "SupernetSearchSummary",
    "StopDecision",
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
