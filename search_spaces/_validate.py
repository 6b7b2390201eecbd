"""Validating a search's answer at a full budget (``python run.py validate --study DIR``).

A search ranks architectures by a *proxy* (a few short epochs, validation split). Validation
retrains the feasible Pareto front (or its ``top_k`` by proxy Dice), the reference ``paper`` and
the parents of the study's compressed variants from scratch with one recipe for all
(:class:`ValidateConfig`: defaults = ``train``'s), evaluates each on the **test** split,
re-applies each compressed variant's recipe to its validated parent
(:mod:`search_spaces._validate_variants`), and takes every validated model's latency on the
study's target in one run (:mod:`search_spaces._validate_latency`: one alternating ONNX Runtime
run here, alternating rounds on an SSH device, or the estimate / prediction per candidate), so
their latencies are comparable even on a busy machine.

Files, per candidate ``STUDY_DIR/validated/<name>/``:

- ``checkpoint.pt``/``metrics.json``: the training, written atomically after every epoch; a
  killed run continues from the last finished epoch (``train(resume=True)``);
- ``trained.json``: the test-split evaluation and the proxy numbers it is compared with; a
  candidate with this file is finished and skipped by later runs;
- ``reapplied.json`` (compressed variants, with their model files): see ``_validate_variants``;
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
    is the deployment input side timed; ``latency_target`` where (None: the study's target;
    ``local`` allowed as an override); ``threads``/``rounds``/``warmup`` the local ORT bench's,
    ``device_rounds``/``device_runs`` an SSH device's alternating rounds. ``finetune_epochs``:
    the fine-tune after re-applying a compressed variant's pruning (None: the variant's own).
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
    latency_target: str | None = None  # None: the study's --target (study.json)
    threads: int | None = None  # None: the search's --threads
    rounds: int = 30
    warmup: int = 5
    device_rounds: int = 5
    device_runs: int = 20
    ssh_options: Any = None  # profiling.SSHOptions for an ssh:// latency target
    remote_backend: str = "auto"
    finetune_epochs: int | None = None  # compressed variants' fine-tune; None: each variant's own
    storage: str | None = None
    study_name: str | None = None
    heartbeat_interval: int = 10
    grace_period: int | None = None
    poll_interval: float = 2.0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ConfigError(f"--top-k: must be an integer >= 1, got {self.top_k!r}")
        names = ("epochs", "size", "batch_size", "latency_size", "rounds", "heartbeat_interval", "device_rounds",
                 "device_runs")  # fmt: skip
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= 1, got {value!r}")
        if self.finetune_epochs is not None and (not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0):
            raise ConfigError(f"--finetune-epochs: must be an integer >= 0, got {self.finetune_epochs!r}")
        if self.latency_target is not None:
            from profiling._backends import check_target

            try:
                check_target(self.latency_target)
            except ConfigError as exc:  # the profiling message names --target; this option is --latency-target
                raise ConfigError(str(exc).replace("--target", "--latency-target", 1)) from None
        if self.grace_period is not None and self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"grace_period ({self.grace_period} s) must exceed heartbeat_interval ({self.heartbeat_interval} s)"
            )

    def budget(self, data: str) -> dict[str, Any]:
        """The recipe every candidate is trained with (stored with the claims; a resumed run must match).

        A ``finetune_epochs`` override is part of it (a run with another one is refused); the
        default (each variant's own epochs) adds nothing, so studies validated before stay valid.
        """
        extra = {} if self.finetune_epochs is None else {"finetune_epochs": self.finetune_epochs}
        return extra | {
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


def validated_record(
    trained: dict[str, Any],
    latency: dict[str, Any],
    *,
    dataset: str,
    threads: int,
    size: int,
    feasible: bool,
    feasibility_note: str = "",
) -> CandidateRecord:
    """The validated :class:`CandidateRecord` of one candidate (budget in ``recipe``).

    ``latency``: its row of :func:`~search_spaces._validate_latency.time_entries` (kind, target,
    device, backend and how it was obtained travel with the number).
    """
    cand = Candidate.from_attrs(trained["candidate"])
    b = trained["budget"]
    recipe = (
        f"full: {b['epochs']} epochs x whole train split, {b['size']}x{b['size']}, batch {b['batch_size']}, "
        f"lr {b['lr']:g} (AdamW, cosine), seed {b['seed']}, from scratch; test split"
    )
    notes = (
        f"validated: retrained from scratch at the full budget, Dice on the test split of {b['data']}; latency "
        f"{_latency_note(latency, threads, size)}; proxy Dice in the search {_fmt(cand.proxy_dice)}"
    )
    return _record(
        cand.name, trained["test"], latency, dataset=dataset, threads=threads, size=size, feasible=feasible,
        parent=cand.name, trial=cand.trial, recipe=recipe, config=cand.config, notes=notes + feasibility_note,
    )  # fmt: skip


def variant_record(
    result: dict[str, Any],
    parent: dict[str, Any],
    latency: dict[str, Any],
    *,
    dataset: str,
    threads: int,
    size: int,
    feasible: bool,
    feasibility_note: str = "",
) -> CandidateRecord:
    """The validated record of a compressed variant re-applied to its validated parent ``parent`` (trained.json)."""
    from search_spaces._validate_variants import VariantPlan, variant_recipe

    plan = VariantPlan.from_attrs(result["variant"])
    cand = Candidate.from_attrs(parent["candidate"])
    pb = parent["budget"]
    recipe = (
        f"{variant_recipe(result)}; parent {cand.name}: full: {pb['epochs']} epochs x whole train split, "
        f"{pb['size']}x{pb['size']}, from scratch; test split"
    )
    notes = (
        f"validated compressed variant: its recipe re-applied to {cand.name} after that parent's full-budget "
        f"training, Dice with ONNX Runtime on its exported graph on the test split of {pb['data']}; latency "
        f"{_latency_note(latency, threads, size)}; in compress, on the proxy-trained parent: Dice "
        f"{_fmt(plan.proxy_dice)} on the validation split ({plan.proxy_recipe})"
    )
    return _record(
        plan.name, result["test"], latency, dataset=dataset, threads=threads, size=size, feasible=feasible,
        parent=cand.name, trial=cand.trial, recipe=recipe, config=cand.config, notes=notes + feasibility_note,
        precision=plan.precision,
    )  # fmt: skip


def _record(name, test, latency, *, dataset, threads, size, feasible, parent, trial, recipe, config, notes,
            precision="fp32") -> CandidateRecord:  # fmt: skip
    median = latency.get("median_ms")
    return CandidateRecord(
        name=name,
        source="validated",
        dataset=dataset,
        split="test",
        dice=test["dice"],
        dice_ps=test["dice_ps"],
        dice_fh=test["dice_fh"],
        delta_aop_deg=test["delta_aop_deg"],
        params=int(latency["params"]),
        macs=int(latency["macs"]),
        latency_ms=float(median) if median is not None else None,
        fps=float(latency["fps"]) if latency.get("fps") is not None else None,
        latency_kind=str(latency.get("kind", "measured")),
        target=str(latency.get("target", "local")),
        device=str(latency.get("device", "")),
        backend=str(latency.get("backend", "onnxruntime")),
        precision=precision,
        threads=threads,
        height=size,
        width=size,
        feasible=feasible,
        parent=parent,
        trial=trial,
        recipe=recipe,
        config=config,
        notes=notes,
    )


def _latency_note(latency: dict[str, Any], threads: int, size: int) -> str:
    kind = str(latency.get("kind", "measured")).upper()
    graph = f"; graph: {latency['graph']}" if latency.get("graph") else ""
    return (
        f"{kind} on {latency.get('target', 'local')}: {latency.get('how', '')}, {threads} thread(s), batch 1, "
        f"{size}x{size}{graph}"
    )


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
