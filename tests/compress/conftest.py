"""Small real models and checkpoints for the compression tests (32 px phantom data, CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import Checkpoint, build_model, create_config, save_checkpoint

SMALL = {"conv_widths": (8, 16, 32), "token_widths": (32, 48)}
DATA = "synthetic:24"
SIZE = 32


def small_config(**overrides):
    return create_config("paper", **{**SMALL, **overrides})


def random_model(cfg, seed: int = 0):
    """A model with non-trivial BN statistics/affines, so pruning choices are not ties."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def write_checkpoint(path: Path, model, *, data: str = DATA, size: int = SIZE, pruning=None) -> Path:
    save_checkpoint(
        Checkpoint(
            config=model.config,
            state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
            pruning=pruning,
            meta={"train": {"data": data, "size": size, "seed": 0}},
        ),
        path,
    )
    return path


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of the small paper-like model (random weights), trained-on metadata = 32 px phantoms."""
    folder = tmp_path_factory.mktemp("small_ckpt")
    return write_checkpoint(folder / "checkpoint.pt", random_model(small_config()))


@pytest.fixture(scope="session")
def tools():
    """The helpers above, for test modules (importlib mode cannot import conftest by name)."""

    class Tools:
        SMALL, DATA, SIZE = SMALL, DATA, SIZE
        small_config = staticmethod(small_config)
        random_model = staticmethod(random_model)
        write_checkpoint = staticmethod(write_checkpoint)

    return Tools
