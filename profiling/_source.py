"""Turn what a user names (a preset, a config file, a checkpoint, an ONNX file, a module) into a model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rtseg_core import ConfigError, InputFileError


@dataclass
class ModelSource:
    """A model to profile: a PyTorch module, an ONNX file, or both once exported.

    ``kind``: ``preset``, ``config``, ``checkpoint``, ``module`` or ``onnx``. ``model`` is None
    for an ONNX file (nothing to count or run in PyTorch). ``channels`` is the input channels when
    known.
    """

    name: str
    kind: str
    model: nn.Module | None
    onnx_path: Path | None = None
    channels: int | None = None


def check_onnx_readable(path: Path) -> None:
    """Refuse a corrupt, truncated, empty or input-less ONNX file up front, naming it (not a protobuf traceback)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError, ValueError, OSError... for a damaged file
        raise InputFileError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]})") from None
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if not model.graph.node or not inputs or not model.graph.output:
        raise InputFileError(
            f"{path}: not a usable ONNX model ({len(model.graph.node)} nodes, {len(inputs)} inputs, "
            f"{len(model.graph.output)} outputs); an empty or truncated file?"
        )


def build_seeded(cfg, seed: int = 0) -> nn.Module:
    """``build_model(cfg)`` with a fixed seed, leaving the global RNG as it was."""
    from models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(cfg).eval()


def load_source(source, *, seed: int = 0, name: str | None = None) -> ModelSource:
    """Resolve ``source``: an ``nn.Module``, an ``RTSegConfig``, a preset name, a config ``.json``,
    an ``.onnx`` file or a checkpoint file. Presets and configs are built with random weights from
    ``seed`` (latency and counts do not depend on the values). Raises :class:`ConfigError` naming
    the source when it is none of these.
    """
    from models import PRESETS, RTSegConfig, create_config, load_model

    if isinstance(source, nn.Module):
        cfg = getattr(source, "config", None)
        return ModelSource(
            name or type(source).__name__, "module", source.eval(), channels=getattr(cfg, "in_channels", None)
        )
    if isinstance(source, RTSegConfig):
        return ModelSource(name or "config", "config", build_seeded(source, seed), channels=source.in_channels)
    text = str(source)
    path = Path(text)
    if text.lower().endswith(".onnx"):
        if not path.is_file():
            raise InputFileError(f"{path}: ONNX file not found")
        check_onnx_readable(path)
        return ModelSource(name or path.name, "onnx", None, onnx_path=path)
    if text in PRESETS or text.lower().endswith(".json"):
        cfg = create_config(text)
        kind = "preset" if text in PRESETS else "config"
        return ModelSource(
            name or (text if kind == "preset" else path.stem), kind, build_seeded(cfg, seed), channels=cfg.in_channels
        )
    if path.is_file():
        model, ckpt = load_model(path)
        return ModelSource(name or path.name, "checkpoint", model, channels=ckpt.config.in_channels)
    create_config(text)  # raises a ConfigError with the presets and a did-you-mean hint
    raise ConfigError(f"{text!r}: not a preset, config JSON, checkpoint or ONNX file")
