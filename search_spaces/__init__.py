"""The RTSeg-Net model family: one typed config builds any member; the default is the released network."""

from search_spaces._checkpoint import Checkpoint, load_checkpoint, load_model, model_from_checkpoint, save_checkpoint
from search_spaces._config import RTSegConfig
from search_spaces._dsconv import DSConv2d, dsconv_quantize, freeze_dsconv
from search_spaces._fusion import EFF, AddFusion
from search_spaces._model import RTSegNet, build_model
from search_spaces._presets import PRESETS, create_config, list_presets
from search_spaces._tokens import TMPBlock, TokenStage, shift_group_sizes, shift_tokens

__all__ = [
    "Checkpoint",
    "load_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "save_checkpoint",
    "EFF",
    "PRESETS",
    "AddFusion",
    "DSConv2d",
    "RTSegConfig",
    "RTSegNet",
    "TMPBlock",
    "TokenStage",
    "build_model",
    "count_parameters",
    "create_config",
    "dsconv_quantize",
    "freeze_dsconv",
    "list_presets",
    "shift_group_sizes",
    "shift_tokens",
]


def count_parameters(model) -> int:
    """The true number of trainable parameters (sum of ``p.numel()``), not a profiler's estimate."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# -- architecture search (issue 4): light modules only; Optuna, training and profiling load on use.
from search_spaces._early_stop import EarlyStopRule, Reference, StopDecision, should_stop  # noqa: E402
from search_spaces._objectives import OBJECTIVES, Constraints, Objective, parse_objectives  # noqa: E402
from search_spaces._search import SAMPLERS, FrontMember, SearchConfig, SearchSummary, run_search  # noqa: E402
from search_spaces._space import (  # noqa: E402
    SearchSpace,
    check_config,
    config_from_params,
    params_from_config,
    suggest_config,
    summarize_config,
)

__all__ += [
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
    "StopDecision",
    "check_config",
    "config_from_params",
    "params_from_config",
    "parse_objectives",
    "run_search",
    "should_stop",
    "suggest_config",
    "summarize_config",
]
