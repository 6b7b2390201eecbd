"""How good are the search's proxies? (``rtseg-nas bench --proxy``)

For ``n_archs`` architectures drawn at random from the search space, plus ``paper``, this trains
each one at a full budget (``full_epochs`` over the whole training split, ``lr`` 1e-3, as
``train``) and evaluates it on the **test** split: the ground truth. Against it, every proxy:

- ``proxy-<E>ep``: the search's proxy recipe (``steps_per_epoch`` steps of ``batch`` images, lr
  3e-3, cosine) run standalone for E epochs (1, 4 = the search default, 12), validation Dice;
- ``rung-<r>``: validation Dice after epoch r of one longer proxy run (the longest standalone one
  when it reaches the top rung, else a run of ``max(rungs)`` epochs), which is what the
  multi-fidelity search (``--fidelity``) ranks trials by at each rung;
- ``params``, ``macs``: the cost counts (more capacity, more Dice?);
- ``synflow``: the training-free SynFlow score (:mod:`rtseg_nas.benches.synflow`).

For each proxy: Kendall tau-b and Spearman against the full-budget test Dice, with percentile
bootstrap 95 % intervals over architectures (:func:`rtseg_core.rank_agreement`), and the
proxy's cost in seconds per architecture on this machine. Each architecture's numbers are written
atomically to ``OUT/archs/<i>.json`` as soon as they exist, so a killed bench resumes where it
stopped; ``OUT/proxy_bench.json`` holds the table.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models import PRESETS, RTSegConfig
from rtseg_core import ConfigError, atomic_write_json, rank_agreement, read_json
from search_spaces import SearchSpace, summarize_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyBenchConfig:
    """Settings of the proxy benchmark (see the module docstring). Sized for a 2-core CPU by default."""

    out_dir: str | Path
    n_archs: int = 12  # drawn from the space; paper is added on top
    data: str = "synthetic:300"
    size: int = 64
    full_epochs: int = 12
    proxy_epochs: tuple[int, ...] = (1, 4, 12)
    rungs: tuple[int, ...] = (1, 3, 9)
    steps_per_epoch: int = 25
    batch_size: int = 8
    proxy_lr: float = 3e-3
    full_lr: float = 1e-3
    seed: int = 0
    n_resamples: int = 2000
    space: SearchSpace = field(default_factory=SearchSpace)

    def __post_init__(self) -> None:
        if self.n_archs < 2:
            raise ConfigError(f"--proxy-archs: needs at least 2 architectures besides paper, got {self.n_archs}")
        for name in ("proxy_epochs", "rungs"):
            values = getattr(self, name)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise ConfigError(f"{name}: needs positive integer epoch counts, got {values!r}")


@dataclass(frozen=True)
class ProxyRow:
    """One proxy's agreement with the full-budget test Dice."""

    proxy: str
    kendall_tau: float
    kendall_low: float
    kendall_high: float
    spearman: float
    spearman_low: float
    spearman_high: float
    n: int
    seconds_per_arch: float  # training/scoring time of the proxy, mean over architectures


def sample_architectures(space: SearchSpace, n: int, *, seed: int) -> list[tuple[str, RTSegConfig]]:
    """``paper`` plus ``n`` distinct architectures drawn uniformly over the space's parameters."""
    import optuna

    from search_spaces import suggest_config

    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(sampler=sampler, directions=["maximize"])
    out: list[tuple[str, RTSegConfig]] = [("paper", PRESETS["paper"])]
    seen = {PRESETS["paper"]}
    attempts = 0
    while len(out) < n + 1:
        attempts += 1
        if attempts > 100 * n:
            raise ConfigError(f"the search space holds fewer than {n} distinct architectures besides paper")
        trial = study.ask()
        try:
            cfg = suggest_config(trial, space)
        except ConfigError:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        study.tell(trial, 0.0)
        if cfg in seen:
            continue
        seen.add(cfg)
        out.append((f"arch-{len(out)}", cfg))
    return out


def run_proxy_bench(config: ProxyBenchConfig, *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the benchmark; returns the JSON-ready result (also ``OUT/proxy_bench.json``)."""
    out = Path(config.out_dir)
    (out / "archs").mkdir(parents=True, exist_ok=True)
    archs = sample_architectures(config.space, config.n_archs, seed=config.seed)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for i, (name, cfg) in enumerate(archs):
        path = out / "archs" / f"{i}.json"
        row = read_json(path) if path.is_file() else None
        if row is not None and row.get("config") == cfg.to_dict() and row.get("settings") == _settings(config):
            rows.append(row)
            continue
        row = _measure_arch(name, cfg, config)
        atomic_write_json(path, row)
        rows.append(row)
        if progress:
            progress(
                f"[{i + 1}/{len(archs)}] {name} {row['summary']}: full test Dice {row['full_dice']:.4f} "
                f"({time.perf_counter() - started:.0f} s so far)"
            )
    result = summarize(rows, config)
    atomic_write_json(out / "proxy_bench.json", result)
    return result


def summarize(rows: list[dict[str, Any]], config: ProxyBenchConfig) -> dict[str, Any]:
    full = [r["full_dice"] for r in rows]
    names = [k for k in rows[0]["proxies"]] if rows else []
    table = []
    for proxy in names:
        values = [r["proxies"][proxy] for r in rows]
        keep = [i for i, v in enumerate(values) if v is not None and math.isfinite(v) and math.isfinite(full[i])]
        if len(keep) < 3:
            continue
        ra = rank_agreement(
            [values[i] for i in keep], [full[i] for i in keep], n_resamples=config.n_resamples, seed=config.seed
        )
        seconds = [r["seconds"].get(proxy, 0.0) for r in rows]
        table.append(
            asdict(
                ProxyRow(
                    proxy=proxy,
                    kendall_tau=ra.kendall_tau,
                    kendall_low=ra.kendall_low,
                    kendall_high=ra.kendall_high,
                    spearman=ra.spearman,
                    spearman_low=ra.spearman_low,
                    spearman_high=ra.spearman_high,
                    n=ra.n,
                    seconds_per_arch=sum(seconds) / max(len(seconds), 1),
                )
            )
        )
    return {
        "settings": _settings(config),
        "ground_truth": (
            f"test-split mean Dice after {config.full_epochs} epochs over the whole training split of "
            f"{config.data} at {config.size}x{config.size} (lr {config.full_lr}, batch {config.batch_size}); "
            "synthetic data, CPU"
        ),
        "architectures": [
            {"name": r["name"], "summary": r["summary"], "full_dice": r["full_dice"], **r["proxies"]} for r in rows
        ],
        "table": table,
        "search_default_proxy": f"proxy-{4}ep",
    }


def format_table(result: dict[str, Any]) -> str:
    """The agreement table as text (one line per proxy)."""
    lines = [
        f"ground truth: {result['ground_truth']}",
        f"{'proxy':<12} {'Spearman [95% CI]':<26} {'Kendall tau [95% CI]':<26} {'n':>3} {'s/arch':>8}",
    ]
    for r in result["table"]:
        sp = f"{r['spearman']:+.2f} [{r['spearman_low']:+.2f}, {r['spearman_high']:+.2f}]"
        kt = f"{r['kendall_tau']:+.2f} [{r['kendall_low']:+.2f}, {r['kendall_high']:+.2f}]"
        lines.append(f"{r['proxy']:<12} {sp:<26} {kt:<26} {r['n']:>3} {r['seconds_per_arch']:>8.1f}")
    lines.append("(percentile bootstrap over architectures; proxies: validation Dice, counts or SynFlow score)")
    return "\n".join(lines)


def _settings(config: ProxyBenchConfig) -> dict[str, Any]:
    return {
        "data": config.data,
        "size": config.size,
        "full_epochs": config.full_epochs,
        "proxy_epochs": list(config.proxy_epochs),
        "rungs": list(config.rungs),
        "steps_per_epoch": config.steps_per_epoch,
        "batch_size": config.batch_size,
        "proxy_lr": config.proxy_lr,
        "full_lr": config.full_lr,
        "seed": config.seed,
    }


def _measure_arch(name: str, cfg: RTSegConfig, config: ProxyBenchConfig) -> dict[str, Any]:
    from models import build_model, count_parameters
    from profiling import count_costs
    from rtseg_nas.benches.synflow import synflow_score
    from segmentation import TrainConfig, evaluate_model, train

    proxies: dict[str, float | None] = {}
    seconds: dict[str, float] = {}

    def proxy_train(epochs: int) -> list[float]:
        tc = TrainConfig(
            data=config.data, size=config.size, epochs=epochs, batch_size=config.batch_size, lr=config.proxy_lr,
            seed=config.seed, device="cpu", steps_per_epoch=config.steps_per_epoch,
        )  # fmt: skip
        result = train(cfg, tc, None, progress=False)
        return [e.val_dice if math.isfinite(e.val_dice) else 0.0 for e in result.epochs]

    histories: dict[int, tuple[list[float], float]] = {}
    for epochs in config.proxy_epochs:
        t0 = time.perf_counter()
        histories[epochs] = (proxy_train(epochs), time.perf_counter() - t0)
        proxies[f"proxy-{epochs}ep"] = histories[epochs][0][-1]
        seconds[f"proxy-{epochs}ep"] = histories[epochs][1]
    # Rungs: epochs of one longer proxy run. To save compute they are read from the longest standalone
    # proxy run when it reaches the top rung (its cosine schedule then spans that run, not max(rungs)).
    longest = max(config.proxy_epochs)
    if longest >= max(config.rungs):
        history, elapsed = histories[longest][0], histories[longest][1] * max(config.rungs) / longest
    else:
        t0 = time.perf_counter()
        history = proxy_train(max(config.rungs))
        elapsed = time.perf_counter() - t0
    for r in sorted(config.rungs):
        proxies[f"rung-{r}"] = history[r - 1]
        seconds[f"rung-{r}"] = elapsed * r / max(config.rungs)
    model = build_model(cfg)
    t0 = time.perf_counter()
    proxies["params"] = float(count_parameters(model))
    seconds["params"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    proxies["macs"] = float(count_costs(model, height=config.size, width=config.size, model_name=name).macs_fvcore)
    seconds["macs"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    proxies["synflow"] = synflow_score(model, size=config.size)
    seconds["synflow"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    full_cfg = TrainConfig(
        data=config.data, size=config.size, epochs=config.full_epochs, batch_size=config.batch_size,
        lr=config.full_lr, seed=config.seed, device="cpu",
    )  # fmt: skip
    trained = build_model(cfg)
    train(cfg, full_cfg, None, progress=False, model=trained)
    ev = evaluate_model(trained, config.data, split="test", size=config.size, seed=config.seed, device="cpu",
                        progress=False)  # fmt: skip
    full_dice = float(ev.summary.mean.dice)
    return {
        "name": name,
        "summary": summarize_config(cfg),
        "config": cfg.to_dict(),
        "settings": _settings(config),
        "full_dice": full_dice,
        "full_seconds": time.perf_counter() - t0,
        "proxies": proxies,
        "seconds": seconds,
    }
