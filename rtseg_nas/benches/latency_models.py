"""The models the latency predictor is built from and judged on: search-space samples, presets, pruned members.

A bench about the method, not a pipeline stage (``latency-table build`` and ``bench --latency-predictor``).

Lives in the app because it draws on the search space (``search_spaces``) and on pruning
(``compress``), both above ``profiling``; ``profiling`` receives plain (name, module) pairs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from compress import PruneSpec, prune_model
from models import build_model, create_config
from profiling import PredictorBenchResult, bench_predictor
from search_spaces import SearchSpace, check_config, config_from_params

if TYPE_CHECKING:
    from profiling import SSHOptions, TimingOptions

PRUNE_RATIOS = (0.2, 0.35, 0.5)


def sample_configs(space: SearchSpace, n: int, *, seed: int) -> list[Any]:
    """``n`` distinct valid configs drawn uniformly from ``space``'s parameters (seeded)."""
    rng = random.Random(seed)
    out, seen, tries = [], set(), 0
    while len(out) < n:
        tries += 1
        if tries > 200 * max(n, 1):
            raise RuntimeError(f"search space: could not draw {n} distinct valid configs")
        params = {}
        for name, (kind, spec) in sorted(space.parameters().items()):
            if kind == "int":
                low, high, step = spec
                params[name] = rng.randrange(low, high + 1, step)
            else:
                params[name] = rng.choice(list(spec))
        cfg = config_from_params(params, space)
        if check_config(cfg, space) is not None or cfg in seen:
            continue
        seen.add(cfg)
        out.append(cfg)
    return out


def _built(cfg: Any, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(cfg).eval()


def pruned_members(ratios: Sequence[float] = PRUNE_RATIOS, *, size: int = 256) -> list[tuple[str, torch.nn.Module]]:
    """``paper`` pruned by L1 to each channel ratio (Torch-Pruning, widths as pruning leaves them)."""
    out = []
    for r in ratios:
        model = _built(create_config("paper"), 0)
        prune_model(model, PruneSpec(ratio=r, size=size))
        out.append((f"paper-pruned-{r:g}", model.eval()))
    return out


def training_models(n: int, *, seed: int, space: SearchSpace | None = None) -> list[tuple[str, torch.nn.Module]]:
    """Models whose kernels fill a table: ``n`` samples of the space (seed ``seed``) and one pruned member."""
    space = space or SearchSpace()
    cfgs = sample_configs(space, n, seed=seed)
    models = [(f"train-{i:02d}", _built(c, seed + i)) for i, c in enumerate(cfgs)]
    return models + [(f"train-{name}", m) for name, m in pruned_members((0.3,))]


def heldout_models(n: int, *, seed: int, space: SearchSpace | None = None) -> list[tuple[str, torch.nn.Module]]:
    """``paper``, ``n`` samples of the space and three pruned ``paper`` members."""
    space = space or SearchSpace()
    cfgs = sample_configs(space, n, seed=seed)
    models = [("paper", _built(create_config("paper"), 0))]
    models += [(f"sample-{i:02d}", _built(c, seed + i)) for i, c in enumerate(cfgs)]
    return models + pruned_members()


def run_predictor_bench(
    *,
    heldout: int = 30,
    training: int = 10,
    seed: int = 0,
    size: int = 256,
    timing: TimingOptions | None = None,
    table: str | None = None,
    target: str = "local",
    ssh_options: SSHOptions | None = None,
    remote_backend: str = "onnxruntime",
    progress: Callable[[str], None] | None = None,
) -> PredictorBenchResult:
    """``rtseg-nas bench --latency-predictor``: held-out and training sets drawn with different seeds.

    ``timing``: how every model is measured (None: ``profiling.bench_predictor``'s default)."""
    train = training_models(training, seed=seed + 10_000)
    held = heldout_models(heldout, seed=seed)
    return bench_predictor(
        train,
        held,
        table=table,
        size=size,
        timing=timing,
        target=target,
        ssh_options=ssh_options,
        remote_backend=remote_backend,
        progress=progress,
    )
