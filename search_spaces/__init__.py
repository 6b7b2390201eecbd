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
