"""The RTSeg-Net model family: one typed config builds any member; the default is the released network.

- :class:`RTSegConfig` (frozen, JSON round trip) and the presets (``paper``, ``paper-figure``, ``unext``);
- :func:`build_model` builds any member; the blocks (DSConv, the tokenized MLP stage, EFF) are
  small modules of their own;
- checkpoints are plain data (config, weights, optional pruning history) loaded with
  ``torch.load(weights_only=True)``;
- the family's Torch-Pruning knowledge (DSConv stand-in, EFF gate, the shift's channel mapping,
  history replay and shift-aware channel selection) lives here, beside the blocks it describes,
  so that loading a pruned checkpoint needs no compression code.

Every other package imports the family from here; this package imports only :mod:`rtseg_core`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtseg_core import lazy_exports

if TYPE_CHECKING:  # the public names; loaded on first use (rtseg_core.lazy_exports)
    from models._checkpoint import Checkpoint, load_checkpoint, load_model, model_from_checkpoint, save_checkpoint
    from models._config import RTSegConfig
    from models._dsconv import DSConv2d, dsconv_quantize, freeze_dsconv
    from models._elastic import ElasticRTSegNet, recalibrate_batchnorm
    from models._fusion import EFF, AddFusion
    from models._model import RTSegNet, build_model, count_parameters
    from models._presets import PRESETS, create_config, list_presets
    from models._prune_graph import (
        build_pruner,
        class_layers,
        history_to_data,
        prunable_view,
        replace_dsconv_standins,
        replay_pruning,
        resolve_modules,
        restore_dsconv,
        shifted_layers,
    )
    from models._segments import Segment, forward_segments, segment_call, traced_segments
    from models._shift_select import feasible_width, lowest, shift_aware_keep
    from models._tokens import TMPBlock, TokenStage, shift_group_sizes, shift_tokens

__all__ = [
    "Segment",
    "forward_segments",
    "segment_call",
    "traced_segments",
    "replace_dsconv_standins",
    "restore_dsconv",
    "build_pruner",
    "class_layers",
    "history_to_data",
    "lowest",
    "prunable_view",
    "resolve_modules",
    "shifted_layers",
    "EFF",
    "PRESETS",
    "AddFusion",
    "Checkpoint",
    "DSConv2d",
    "ElasticRTSegNet",
    "RTSegConfig",
    "RTSegNet",
    "TMPBlock",
    "TokenStage",
    "build_model",
    "count_parameters",
    "create_config",
    "dsconv_quantize",
    "feasible_width",
    "freeze_dsconv",
    "list_presets",
    "load_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "recalibrate_batchnorm",
    "replay_pruning",
    "save_checkpoint",
    "shift_aware_keep",
    "shift_group_sizes",
    "shift_tokens",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
