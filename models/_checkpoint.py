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
from rtseg_core import ConfigError, InputFileError, atomic_save_torch, brief, load_torch_data

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
    data = load_torch_data(path, what="checkpoint")  # refuses pickled code; never advises loading it unsafely
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputFileError(f"{path}: not an rtseg-nas checkpoint (no 'format': {FORMAT!r})")
    if data.get("version") != VERSION:
        raise InputFileError(
            f"{path}: checkpoint version {brief(data.get('version'))} is not supported (expected {VERSION})"
        )
    _check_fields(path, data)
    try:
        config = RTSegConfig.from_dict(data["config"], source=f"{path}: config")
    except InputFileError:
        raise
    except ConfigError as exc:  # the stored config is damaged: a bad input file, not a bad option
        raise InputFileError(str(exc)) from None
    return Checkpoint(
        config=config,
        state_dict=data["state_dict"],
        pruning=data.get("pruning"),
        optimizer=data.get("optimizer"),
        epoch=data.get("epoch", 0),
        metrics=data.get("metrics") or {},
        meta=data.get("meta") or {},
    )


def _check_fields(path: Path, data: dict[str, Any]) -> None:
    """Every field of a crafted or damaged checkpoint, checked before anything uses it."""

    def fail(field: str, rule: str) -> None:
        value = data.get(field, "<missing>")
        shown = type(value).__name__ if not isinstance(value, (str, int, float, type(None))) else brief(value)
        raise InputFileError(f"{path}: checkpoint field {field!r} {rule} (got {shown})")

    for key in ("config", "state_dict"):
        if key not in data:
            fail(key, "is missing")
    if not isinstance(data["config"], dict):
        fail("config", "must be a dict of RTSegConfig fields")
    sd = data["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        fail("state_dict", "must map parameter names to tensors")
    for key in ("pruning", "optimizer"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            fail(key, "must be a dict or null")
    if data.get("pruning") is not None and not isinstance(data["pruning"].get("history", []), list):
        fail("pruning", "must hold a 'history' list")
    epoch = data.get("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        fail("epoch", "must be an integer >= 0")
    for key in ("metrics", "meta"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            fail(key, "must be a dict")
    train = (data.get("meta") or {}).get("train")
    if train is not None:
        ok = (
            isinstance(train, dict)
            and isinstance(train.get("data", ""), str)
            and all(
                isinstance(train.get(k, 0), int) and not isinstance(train.get(k, 0), bool) for k in ("size", "seed")
            )
        )
        if not ok:
            raise InputFileError(
                f"{path}: checkpoint field meta['train'] must be {{'data': str, 'size': int, 'seed': int}}, "
                f"got {brief(train, limit=120)}"
            )


def model_from_checkpoint(ckpt: Checkpoint, *, source: str = "checkpoint") -> nn.Module:
    """Rebuild the architecture (replaying any pruning) and load the weights strictly."""
    bad = [
        name
        for name, tensor in ckpt.state_dict.items()
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all()
    ]
    if bad:
        raise InputFileError(
            f"{source}: {len(bad)} weight tensor(s) hold NaN or infinite values ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}); the checkpoint is broken (a diverged run?) and is not used"
        )
    model = build_model(ckpt.config)
    if ckpt.pruning:
        try:
            model = replay_pruning(model, ckpt.pruning)
        except InputFileError:
            raise
        except ConfigError as exc:  # the stored history is damaged: a bad input file
            raise InputFileError(f"{source}: {exc}") from None
        except Exception as exc:  # a crafted history: unknown modules, indices out of range...
            raise InputFileError(
                f"{source}: the pruning history cannot be replayed ({type(exc).__name__}: {str(exc)[:200]})"
            ) from None
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except (RuntimeError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:4])
        raise InputFileError(f"{source}: the weights do not match the config ({detail[:600]})") from None
    return model


def load_model(path: str | Path) -> tuple[nn.Module, Checkpoint]:
    """Load a checkpoint file into a model in eval mode; returns ``(model, checkpoint)``."""
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, source=str(path))
    return model.eval(), ckpt
