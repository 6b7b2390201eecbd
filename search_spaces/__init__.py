"""The RTSeg-Net model family: one typed config builds any member; the default is the released network.

Also the architecture search over the family. Importing this package stays light: Optuna,
training and profiling are imported only when a search runs.
"""

from search_spaces._checkpoint import Checkpoint, load_checkpoint, load_model, model_from_checkpoint, save_checkpoint
from search_spaces._config import RTSegConfig
from search_spaces._dsconv import DSConv2d, dsconv_quantize, freeze_dsconv
from search_spaces._early_stop import EarlyStopRule, Reference, StopDecision, should_stop
from search_spaces._fusion import EFF, AddFusion
from search_spaces._model import RTSegNet, build_model, count_parameters
from search_spaces._objectives import OBJECTIVES, Constraints, Objective, parse_objectives
from search_spaces._presets import PRESETS, create_config, list_presets
from search_spaces._search import SAMPLERS, FrontMember, SearchConfig, SearchSummary, run_search
from search_spaces._space import (
    SearchSpace,
    check_config,
    config_from_params,
    params_from_config,
    suggest_config,
    summarize_config,
)
from search_spaces._tokens import TMPBlock, TokenStage, shift_group_sizes, shift_tokens

__all__ = [
    "EFF",
    "OBJECTIVES",
    "PRESETS",
    "SAMPLERS",
    "AddFusion",
    "Checkpoint",
    "Constraints",
    "DSConv2d",
    "EarlyStopRule",
    "FrontMember",
    "Objective",
    "RTSegConfig",
    "RTSegNet",
    "Reference",
    "SearchConfig",
    "SearchSpace",
    "SearchSummary",
    "StopDecision",
    "TMPBlock",
    "TokenStage",
    "build_model",
    "check_config",
    "config_from_params",
    "count_parameters",
    "create_config",
    "dsconv_quantize",
    "freeze_dsconv",
    "list_presets",
    "load_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "params_from_config",
    "parse_objectives",
    "run_search",
    "save_checkpoint",
    "shift_group_sizes",
    "shift_tokens",
    "should_stop",
    "suggest_config",
    "summarize_config",
]
