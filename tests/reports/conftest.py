"""A tiny study directory in the layout the search and compression write (real JSON/CSV files)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from rtseg_core import (
    CandidateRecord,
    Constraints,
    EvalMetrics,
    MultiTrialSettings,
    ProxyTrainingSettings,
    StudyDir,
    StudySettings,
    ValidatedLatency,
    ValidatedResult,
    ValidatedSummary,
    atomic_write_json,
    atomic_write_text,
    rank_agreement,
    write_candidate,
    write_trained,
)

BASE = CandidateRecord(
    name="paper",
    source="reference",
    dataset="synthetic",
    split="val",
    dice=0.90,
    dice_ps=0.88,
    dice_fh=0.92,
    delta_aop_deg=3.5,
    params=1_900_000,
    macs=1_000_000_000,
    latency_ms=50.0,
    fps=20.0,
    latency_kind="measured",
    target="local",
    device="Intel Xeon (2 cores)",
    backend="onnxruntime",
    precision="fp32",
    threads=2,
    height=64,
    width=64,
    feasible=True,
    trial=0,
    config={"widths": [8, 16, 32], "act": "gelu"},
)


def cand(name: str, **changes) -> CandidateRecord:
    """A candidate like the paper preset with ``changes``; FPS follows latency unless given."""
    if "latency_ms" in changes and "fps" not in changes and changes["latency_ms"] is not None:
        changes["fps"] = 1000.0 / changes["latency_ms"]
    return replace(BASE, name=name, **changes)


def write_study(root: Path, records, *, settings=None, history_csv: str | None = None, environment=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if settings is not None:
        atomic_write_json(root / "study.json", settings)
    for r in records:
        sub = root / "compressed" / r.name if r.source == "compressed" else root / "trials" / str(r.trial)
        atomic_write_json(sub / "candidate.json", r.to_dict())
    if history_csv is not None:
        atomic_write_text(root / "history.csv", history_csv)
    if environment is not None:
        atomic_write_json(root / "environment.json", environment)
    return root


# study.json as a search writes it (through the one writer's record), for a tiny multi-trial study.
STUDY_SETTINGS = StudySettings(
    objectives=(("dice", "maximize"), ("latency_ms", "minimize")),
    constraints=Constraints(min_fps=10),
    target="local",
    precision="fp32",
    threads=2,
    data="synthetic:8",
    size=64,
    latency_size=None,
    sampler="nsga2",
    population_size=16,
    seed=0,
    space={"base": "paper", "conv_widths": [[8, 16], [16, 24]]},
    trials_requested=6,
    storage="sqlite:///tiny/study.db",
    study_name="tiny",
    reference="paper",
    search=MultiTrialSettings(
        proxy_training=ProxyTrainingSettings(
            epochs=2, steps_per_epoch=5, batch_size=4, lr=0.003, val_batches=None, frames="ps+fh", seed=0
        ),
        early_stop=False,
        early_stop_rule={"after_epochs": 2, "margin": 0.1, "cost_tolerance": 0.1},
        budget_epochs=None,
    ),
)
SETTINGS = STUDY_SETTINGS.to_dict()


# The full budget of `validate` (ValidateConfig.budget), as its files record it.
BUDGET = {"epochs": 30, "size": 256, "batch_size": 8, "lr": 0.001, "seed": 0, "data": "synthetic:400",
          "steps_per_epoch": None, "split": "test"}  # fmt: skip


def write_validated(study: Path, rows: dict, *, budget=BUDGET, threads: int = 1, agreement="stage") -> Path:
    """``validated/`` as `validate` writes it, through StudyDir's writers: each model's candidate.json and
    trained.json, the stage's latency.json and summary.json. ``rows``: name -> (proxy Dice or None, test Dice,
    latency ms, feasible). ``agreement``: "stage" computes it as the stage does; or a RankAgreement / None."""
    shutil.rmtree(study / "validated", ignore_errors=True)
    sd = StudyDir(study)
    for i, (name, (proxy, dice, latency, feasible)) in enumerate(rows.items()):
        record = cand(name, source="validated", split="test", dice=dice, latency_ms=latency, parent=name, trial=i,
                      feasible=feasible, threads=threads, height=256, width=256, target="local",
                      recipe="full: 30 epochs x whole train split")  # fmt: skip
        write_candidate(sd.validated(name), record)
        candidate = {"candidate": name, "trial": i, "config": dict(BASE.config), "source": "trial",
                     "proxy_dice": proxy, "proxy_latency_ms": None, "proxy_values": {}}  # fmt: skip
        test = EvalMetrics(dice=dice, dice_ps=dice, dice_fh=dice, delta_aop_deg=2.0)
        write_trained(sd.validated(name), ValidatedResult(candidate, budget, budget["epochs"], test, 0.5))
    pairs = [(p, d) for p, d, _, _ in rows.values() if p is not None]
    if agreement == "stage":
        agreement = None
        if len(pairs) >= 3:
            agreement = rank_agreement([p for p, _ in pairs], [d for _, d in pairs], a_label="proxy val Dice",
                                       b_label="full-budget test Dice")  # fmt: skip
    sd.write_validated_latency(
        ValidatedLatency(
            kind="measured",
            target="local",
            conditions={"input": "1x1x256x256", "threads": threads},
            candidates={n: {"median_ms": lat, "params": BASE.params} for n, (_, _, lat, _) in rows.items()},
        )  # fmt: skip
    )
    sd.write_validated_summary(
        ValidatedSummary(
            budget=budget,
            candidates=tuple(sorted(rows)),
            variants=(),
            latency_target="local",
            proxy_dice={n: p for n, (p, _, _, _) in rows.items()},
            agreement=agreement,
        )  # fmt: skip
    )
    return study


def tiny_records():
    """Front (dice max, latency min): paper, paper.int8, trial-1, trial-4; trial-2 dominated;
    trial-3 infeasible; trial-5 lacks a Dice value."""
    return [
        cand("paper"),
        cand("trial-1", source="trial", trial=1, dice=0.88, latency_ms=25.0, params=1_000_000, macs=500_000_000),
        cand("trial-2", source="trial", trial=2, dice=0.85, latency_ms=55.0, params=1_500_000, macs=800_000_000),
        cand("trial-3", source="trial", trial=3, dice=0.93, latency_ms=200.0, params=5_000_000, feasible=False),
        cand(
            "trial-4",
            source="trial",
            trial=4,
            dice=0.86,
            latency_ms=16.0,
            latency_kind="estimated",
            target="jetson-nano-estimate",
            backend="roofline",
            threads=None,
            params=600_000,
            macs=300_000_000,
        ),
        cand("trial-5", source="trial", trial=5, dice=None, dice_ps=None, dice_fh=None),
        cand(
            "paper.int8",
            source="compressed",
            parent="paper",
            trial=None,
            dice=0.895,
            latency_ms=28.0,
            precision="int8",
            recipe="ort-int8-qdq-minmax",
            notes="<script>alert('x')</script>",
        ),
    ]


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    return write_study(
        tmp_path / "study",
        tiny_records(),
        settings=SETTINGS,
        environment={"python": "3.11", "cpu": "Xeon <2 cores>", "versions": {"torch": "2.13"}},
    )


# -- real tiny searches (issue 11's report pieces): the tiny space and proxy of tests/search_spaces -------------
SEARCH_SPACE = {"conv_widths": [[8, 16], [16, 24], [24, 32]], "token_widths": [[32, 48], [48, 64]],
                "enc_depths": [0, 1], "dec_depths": [0, 1], "mlp_ratio": [1, 2], "shift_size": [3, 5]}  # fmt: skip
SEARCH_PROXY = {"data": "synthetic:24", "size": 32, "latency_size": 32, "steps_per_epoch": 1, "batch_size": 4,
                "target": "jetson-nano-estimate", "sampler": "random", "seed": 0, "early_stop": False,
                "heartbeat_interval": 1, "progress": False}  # fmt: skip
MF_RUNGS = (1, 2, 3)


def run_tiny_search(study_dir: Path, **options) -> Path:
    """A real search of the tiny space at 32 px, one step per epoch (seconds per trial), one thread."""
    import torch

    from search_spaces import SearchConfig, SearchSpace, run_search

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        space = SearchSpace.from_dict(SEARCH_SPACE)
        run_search(SearchConfig.from_options(study_dir, space=space, **{**SEARCH_PROXY, **options}))
    finally:
        torch.set_num_threads(previous)
    return study_dir


@pytest.fixture(scope="session")
def mf_search(tmp_path_factory) -> Path:
    """A real multi-fidelity search (rungs 1, 2, 3 epochs, eta 2, 7 trials). Copy it before writing into it."""
    return run_tiny_search(tmp_path_factory.mktemp("mf") / "mf", trials=7, fidelity=MF_RUNGS, eta=2)
