"""Validating a search's answer at a full budget (``python run.py validate --study DIR``).

A search ranks architectures by a *proxy* (a few short epochs, validation split). Validation
retrains the feasible Pareto front (or its ``top_k`` by proxy Dice) and the reference ``paper``
from scratch with one recipe for all (:class:`ValidateConfig`: defaults = ``train``'s), evaluates
each on the **test** split, and times every validated model in one alternating ONNX Runtime run
at the deployment size (latency depends on the architecture only, so fresh builds are timed),
so their latencies are comparable even on a busy machine.

Files, per candidate ``STUDY_DIR/validated/<name>/``:

- ``checkpoint.pt``/``metrics.json``: the training, written atomically after every epoch; a
  killed run continues from the last finished epoch (``train(resume=True)``);
- ``trained.json``: the test-split evaluation and the proxy numbers it is compared with; a
  candidate with this file is finished and skipped by later runs;
- ``candidate.json``: the validated :class:`CandidateRecord` (``source="validated"``,
  ``parent`` = the trial's name, ``split="test"``, ``recipe`` = the full budget), written once
  every candidate is trained and the latency run is done. ``validated/latency.json`` holds it.

Several workers (machines) validate one study together through its storage; see
:mod:`search_spaces._validate_queue`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models._config import RTSegConfig
from rtseg_core import CandidateRecord, ConfigError, SearchError, StudyDir, atomic_write_json, read_json
from rtseg_core._study import VALIDATED

log = logging.getLogger(__name__)

VALIDATED_DIR = VALIDATED  # the folder name, owned by rtseg_core._study
TRAINED_FILE = "trained.json"


@dataclass(frozen=True)
class ValidateConfig:
    """One validation run. Training defaults are ``run.py train``'s (30 epochs, 256 px, lr 1e-3,
    batch 8, the whole training split). ``top_k`` (None: the whole feasible front) picks the
    front members with the highest proxy Dice; ``paper`` is always validated. ``latency_size``
    is the deployment input side timed; ``threads``/``rounds``/``warmup`` the ORT bench's.
    ``storage``/``study_name`` as the search's (None: ``STUDY_DIR/study.db`` and the name in
    ``study.json``); the claims live in the study ``<study_name>-validate`` of that storage.
    """

    study_dir: str | Path
    top_k: int | None = None
    epochs: int = 30
    size: int = 256
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    data: str | None = None  # None: the search's --data
    device: str = "auto"
    latency_size: int = 256
    threads: int | None = None  # None: the search's --threads
    rounds: int = 30
    warmup: int = 5
    storage: str | None = None
    study_name: str | None = None
    heartbeat_interval: int = 10
    grace_period: int | None = None
    poll_interval: float = 2.0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ConfigError(f"--top-k: must be an integer >= 1, got {self.top_k!r}")
        for name in ("epochs", "size", "batch_size", "latency_size", "rounds", "heartbeat_interval"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= 1, got {value!r}")
        if self.grace_period is not None and self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"grace_period ({self.grace_period} s) must exceed heartbeat_interval ({self.heartbeat_interval} s)"
            )

    def budget(self, data: str) -> dict[str, Any]:
        """The recipe every candidate is trained with (stored with the claims; a resumed run must match)."""
        return {
            "epochs": self.epochs,
            "size": self.size,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
            "data": data,
            "steps_per_epoch": None,
            "split": "test",
        }


@dataclass(frozen=True)
class Candidate:
    """One architecture to validate, as the search recorded it (proxy numbers from the storage)."""

    name: str  # the trial's name: "paper", "trial-7"
    trial: int
    config: dict
    source: str  # "reference" | "trial"
    proxy_dice: float | None
    proxy_latency_ms: float | None
    proxy_values: dict = field(default_factory=dict)  # objective field -> value in the search

    def to_attrs(self) -> dict[str, Any]:
        return {
            "candidate": self.name,
            "trial": self.trial,
            "config": self.config,
            "source": self.source,
            "proxy_dice": self.proxy_dice,
            "proxy_latency_ms": self.proxy_latency_ms,
            "proxy_values": self.proxy_values,
        }

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Candidate:
        return cls(
            name=str(attrs["candidate"]),
            trial=int(attrs["trial"]),
            config=dict(attrs["config"]),
            source=str(attrs["source"]),
            proxy_dice=attrs.get("proxy_dice"),
            proxy_latency_ms=attrs.get("proxy_latency_ms"),
            proxy_values=dict(attrs.get("proxy_values") or {}),
        )


def candidate_dir(study_dir: Path, name: str) -> Path:
    """``STUDY_DIR/validated/<name>`` (the study-folder owner refuses names that would leave the folder)."""
    return StudyDir(study_dir).validated(name)


def train_candidate(cand: Candidate, budget: dict[str, Any], study_dir: Path, *, device: str) -> dict[str, Any]:
    """Train ``cand`` from scratch at ``budget`` (resuming its own checkpoint) and evaluate it on the test split.

    Returns (and writes atomically as ``trained.json``) the result; an existing ``trained.json``
    with the same budget is returned as is (finished candidates are skipped). A folder trained
    with another budget is refused, never silently mixed.
    """
    from models._checkpoint import load_model
    from segmentation._evaluate import evaluate_model
    from segmentation._train import TrainConfig, train

    work = candidate_dir(study_dir, cand.name)
    done = work / TRAINED_FILE
    if done.is_file():
        result = read_json(done)
        if result.get("budget") != budget:
            raise SearchError(
                f"{done}: trained with {result.get('budget')}, this run asks for {budget}; repeat the original "
                f"options or move {work} away"
            )
        return result
    arch = RTSegConfig.from_dict(cand.config, source=f"candidate {cand.name}")
    ckpt = work / "checkpoint.pt"
    tc = TrainConfig(
        data=budget["data"], size=budget["size"], epochs=budget["epochs"], batch_size=budget["batch_size"],
        lr=budget["lr"], seed=budget["seed"], device=device,
    )  # fmt: skip
    if ckpt.is_file():
        from models import load_checkpoint

        before = (load_checkpoint(ckpt).meta or {}).get("train", {})
        differ = [k for k in ("data", "size", "epochs", "batch_size", "lr", "seed") if before.get(k) != getattr(tc, k)]
        if differ:
            raise SearchError(
                f"{ckpt}: a training with other settings ({', '.join(f'{k}={before.get(k)!r}' for k in differ)}) "
                f"is in progress there; repeat its options or move {work} away"
            )
        log.info("%s: resuming the full-budget training from %s", cand.name, ckpt)
    result = train(arch, tc, work, resume=True, progress=False)
    model, _ = load_model(ckpt)
    ev = evaluate_model(
        model, budget["data"], split="test", size=budget["size"], seed=budget["seed"], device=device, progress=False
    )
    s = ev.summary
    out = {
        "candidate": cand.to_attrs(),
        "budget": budget,
        "epochs_trained": len(result.epochs),
        "test": {
            "dice": _num(s.mean.dice),
            "dice_ps": _num(s.ps.dice),
            "dice_fh": _num(s.fh.dice),
            "delta_aop_deg": _num(s.mean.delta_aop),
        },
        "val_dice_last_epoch": _num(result.epochs[-1].val_dice) if result.epochs else None,
    }
    return read_json(atomic_write_json(done, out))


def bench_latencies(
    configs: dict[str, dict], *, size: int, threads: int, rounds: int, warmup: int, seed: int = 0
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every architecture timed with ONNX Runtime FP32 in one alternating run (``profiling.bench_variants``).

    Returns ``({name: {"median_ms", "fps", "params", "macs"}}, conditions)``. Weights do not
    change the time of a dense network, so each architecture is a fresh build.
    """
    import tempfile

    import numpy as np

    from models._model import build_model
    from profiling._bench import bench_variants, ort_variant
    from profiling._counts import count_costs
    from profiling._env import describe_device, describe_environment
    from profiling._export import ExportConfig, export_onnx
    from profiling._latency import torch_threads

    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="rtseg-validate-") as tmp, torch_threads(threads):
        variants = []
        channels = 1
        for i, (name, cfg_dict) in enumerate(configs.items()):
            arch = RTSegConfig.from_dict(cfg_dict, source=f"candidate {name}")
            channels = arch.in_channels
            model = build_model(arch).eval()
            cost = count_costs(model, height=size, width=size, model_name=name)
            out[name] = {"params": int(cost.params), "macs": int(cost.macs_fvcore)}
            path = Path(tmp) / f"{i}.onnx"
            export_onnx(model, path, ExportConfig(height=size, width=size, channels=channels), model_name=name)
            variants.append(ort_variant(name, path, threads=threads))
        x = np.random.default_rng(seed).standard_normal((1, channels, size, size)).astype(np.float32)
        conditions = {
            "input": f"1x{channels}x{size}x{size}",
            "threads": threads,
            "rounds": rounds,
            "warmup": warmup,
            "device": describe_device(),
            "runtime": "ONNX Runtime CPUExecutionProvider FP32, one alternating run over every candidate",
            "environment": describe_environment(threads=threads),
        }
        baseline = "paper" if "paper" in configs else None  # speed-ups relative to the reference
        result = bench_variants(variants, x, rounds=rounds, warmup=warmup, baseline=baseline, conditions=conditions)
    for v in result.variants:
        out[v.name].update(median_ms=v.median_ms, p90_ms=v.p90_ms, iqr_ms=v.iqr_ms, fps=v.fps, runs=v.runs)
    return out, {**conditions, "table": result.format_table()}


def validated_record(
    trained: dict[str, Any], latency: dict[str, Any], *, dataset: str, threads: int, size: int, feasible: bool
) -> CandidateRecord:
    """The validated :class:`CandidateRecord` of one candidate (budget in ``recipe``)."""
    from profiling._env import describe_device

    cand = Candidate.from_attrs(trained["candidate"])
    b = trained["budget"]
    test = trained["test"]
    recipe = (
        f"full: {b['epochs']} epochs x whole train split, {b['size']}x{b['size']}, batch {b['batch_size']}, "
        f"lr {b['lr']:g} (AdamW, cosine), seed {b['seed']}, from scratch; test split"
    )
    return CandidateRecord(
        name=cand.name,
        source="validated",
        dataset=dataset,
        split="test",
        dice=test["dice"],
        dice_ps=test["dice_ps"],
        dice_fh=test["dice_fh"],
        delta_aop_deg=test["delta_aop_deg"],
        params=int(latency["params"]),
        macs=int(latency["macs"]),
        latency_ms=float(latency["median_ms"]),
        fps=float(latency["fps"]),
        latency_kind="measured",
        target="local",
        device=describe_device(),
        backend="onnxruntime",
        precision="fp32",
        threads=threads,
        height=size,
        width=size,
        feasible=feasible,
        parent=cand.name,
        trial=cand.trial,
        recipe=recipe,
        config=cand.config,
        notes=(
            f"validated: retrained from scratch at the full budget, Dice on the test split of {b['data']}; latency "
            f"MEASURED with ONNX Runtime FP32, {threads} thread(s), batch 1, {size}x{size}, median of one "
            f"alternating run over every validated candidate; proxy Dice in the search {_fmt(cand.proxy_dice)}"
        ),
    )


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
