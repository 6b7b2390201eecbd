"""Checkpoints that load with ``torch.load(weights_only=True)``: plain data, never pickled modules.

A checkpoint is a dict::

    {"format": "rtseg-nas/checkpoint", "version": 1,
     "config": RTSegConfig.to_dict(),          # the architecture
     "pruning": None | {"history": [...], ...}, # Torch-Pruning history replayed on a fresh build
     "state_dict": {...}, "optimizer": {...} | None, "epoch": int,
     "metrics": {...}, "meta": {...}}           # meta: data spec, size, seed, recipe ...

The model is rebuilt from the config, the pruning history (if any) is replayed, then the
weights are loaded strictly: a config that does not match its weights is an error, not a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models._config import RTSegConfig
from models._model import build_model
from models._prune_graph import replay_pruning
from rtseg_core import ConfigError, atomic_save_torch

FORMAT = "rtseg-nas/checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    config: RTSegConfig
    state_dict: dict[str, torch.Tensor]
    pruning: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "config": self.config.to_dict(),
            "pruning": self.pruning,
            "state_dict": self.state_dict,
            "optimizer": self.optimizer,
            "epoch": self.epoch,
            "metrics": self.metrics,
            "meta": self.meta,
        }


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write atomically (temp file + rename): an interrupted save never leaves half a checkpoint."""
    return atomic_save_torch(ckpt.to_dict(), path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise ConfigError(f"{path}: not a loadable checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{path}: not an rtseg-nas checkpoint (no 'format': {FORMAT!r})")
    if data.get("version") != VERSION:
        raise ConfigError(f"{path}: checkpoint version {data.get('version')} is not supported (expected {VERSION})")
    return Checkpoint(
        config=RTSegConfig.from_dict(data["config"], source=f"{path}: config"),
        state_dict=data["state_dict"],
        pruning=data.get("pruning"),
        optimizer=data.get("optimizer"),
        epoch=int(data.get("epoch", 0)),
        metrics=data.get("metrics") or {},
        meta=data.get("meta") or {},
    )


def model_from_checkpoint(ckpt: Checkpoint, *, source: str = "checkpoint") -> nn.Module:
    """Rebuild the architecture (replaying any pruning) and load the weights strictly."""
    model = build_model(ckpt.config)
    if ckpt.pruning:
        model = replay_pruning(model, ckpt.pruning)
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:4])
        raise ConfigError(f"{source}: the weights do not match the config ({detail[:600]})") from None
    return model


def load_model(path: str | Path) -> tuple[nn.Module, Checkpoint]:
    """Load a checkpoint file into a model in eval mode; returns ``(model, checkpoint)``."""
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, source=str(path))
    return model.eval(), ckpt
