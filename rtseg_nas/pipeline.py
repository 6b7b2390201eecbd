"""The one-command pipeline on the built-in synthetic data: train, search, compress, validate, profile, report.

Every stage writes into ``DemoConfig.out_dir`` and is recorded in ``stages.json`` with the
settings it ran with; running the demo again skips each stage whose settings are unchanged and
whose outputs are still there, so an interrupted demo resumes where it stopped (training and the
search also resume inside their stage).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rtseg_core import (
    DEPLOYMENT_SIZE,
    METRICS_JSON,
    StudyDir,
    atomic_write_json,
    check_output_dir,
    dataset_path,
    make_folder,
    mark_output,
    read_json,
    read_manifest,
    read_training_metrics,
    resolve_threads,
    torch_threads,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Defaults sized for a 2-core CPU: the whole demo must stay within 15 minutes there.

    Measured 2026-12-07 with one validate seed: 14 min 53 s (train 297 s, search 224 s, compress
    29 s, validate 333 s). Validating with 2 paired seeds (issue 19: a verdict against paper needs
    more than one training run) doubles validate's trainings and re-applied variants (+~280 s at 12
    epochs), so the rest shrank: the paper stage trains 12 epochs instead of 30 (-~180 s; it is the
    report's reference star and the profiled model, validate trains its own paper), validate keeps
    the top 1 by proxy Dice (compress's parent, so its variants need no extra parent; -1 model x 2
    seeds) at 10 epochs instead of 12. Measured 2026-12-07 with these defaults, from scratch: 14 min
    37 s (train 146 s, search 235 s, compress 34 s, validate 449 s) with a test run on the other core;
    `make demo` on a fresh clone, nothing else running: 823 s (13 min 55 s with the set-up).
    """

    out_dir: str | Path = "runs/demo"
    data: str = "synthetic:400"
    seed: int = 0
    # 1. the paper network, trained for real (the same run as `train --size 128 --epochs 12`); 12, not
    # 30, epochs leave room for validate's second seed (see above)
    size: int = 128
    epochs: int = 12
    batch_size: int = 8
    # 2. the search (proxy training)
    trials: int = 12
    search_size: int = 96
    search_epochs: int = 4
    steps_per_epoch: int = 25
    # 3. compression of the best feasible front member(s); validate re-applies their recipe to the
    # validated parent, so each compressed parent costs a second prune + fine-tune + INT8 there: one
    # parent (it was 2) keeps the demo's total time about where it was
    top_k: int = 1
    prune_macs: float = 0.5  # prune to this fraction of the parent's MACs
    round_to: int = 16  # ONNX Runtime's CPU convs work in 16-channel blocks here (use 8 for TensorRT)
    finetune_epochs: int = 3
    # 3b. validation (issues 11, 19): the top front member by proxy Dice (the compressed parent: compress
    # and validate both rank the feasible front by proxy Dice), paper and the compressed parents, each
    # retrained with `validate_seeds` paired training seeds (seeds seed .. seed+K-1 on one split) at a
    # budget kept small for the 15 minutes on 2 cores, the compressed variants' recipes re-applied to
    # every seed's parent (their own 3 fine-tune epochs), test split, one latency run; the report's
    # ship menu gives each model's speed and Dice difference to paper with their intervals
    validate_top_k: int = 1
    validate_epochs: int = 10
    validate_size: int = 96
    validate_seeds: int = 2
    # lr 3e-3, not train's 1e-3: at this short budget paper's pubic symphysis is learnt late or not at all
    # at 1e-3 on some seeds (2026-12-07, paper, 10 epochs x 96 px on synthetic:400, data seed 0, seeds
    # 0-2, test Dice: 1e-3 0.5823 (PS 0.21), 0.8484, 0.8895, sd 0.167; 3e-3 0.8984, 0.8994, 0.9038, sd
    # 0.003; higher on every seed, +12.7 points [-28.2, +53.6], indistinguishable by the paired rule at 3
    # seeds because of the one half-trained run), which made the demo's menu pair every candidate with
    # a half-trained reference
    validate_lr: float = 3e-3
    # 4. profiling of the trained paper network
    profile_size: int = DEPLOYMENT_SIZE
    profile_runs: int = 30
    threads: int = 1  # threads of the timed inference (ONNX Runtime and PyTorch)
    # PyTorch threads for training, search and fine-tuning; None: the suite's policy
    # (rtseg_core._threads: OMP_NUM_THREADS, else half the cores, at most 4). Not a stage setting:
    # it changes how long a stage takes, not what it produces.
    train_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        return out


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    stages: dict[str, dict[str, Any]]  # name -> {"seconds": ..., "skipped": bool}
    wall_s: float


def run_demo(cfg: DemoConfig, *, progress: bool = True, overwrite: bool = False) -> DemoResult:
    """Run (or resume) the whole pipeline; returns the report's path and per-stage timings.

    ``out_dir`` must be new, empty or an earlier demo's folder (``overwrite``: also another verb's
    output holding only the files it listed); the demo writes into it and deletes nothing.
    """
    with torch_threads(resolve_threads(cfg.train_threads, option="--train-threads")):
        return _run_demo(cfg, progress=progress, overwrite=overwrite)


def _run_demo(cfg: DemoConfig, *, progress: bool, overwrite: bool) -> DemoResult:
    out = Path(cfg.out_dir)
    stages_path = out / "stages.json"
    legacy = stages_path.is_file() and read_manifest(out) is None  # a demo folder from before manifests
    check_output_dir(
        out, verb="demo", inputs=[dataset_path(cfg.data)], overwrite=overwrite, in_place=True, legacy=legacy
    )
    make_folder(out, option="--out")
    mark_output(out, verb="demo")
    done: dict[str, Any] = read_json(stages_path) if stages_path.is_file() else {}
    timings: dict[str, dict[str, Any]] = {}
    study = out / "study"
    paper = out / "paper"
    t0 = time.perf_counter()

    def stage(
        name: str, settings: dict[str, Any], outputs: list[Path], fn: Callable[[], Any], *, owns: Path | None = None
    ) -> None:
        previous = done.get(name)
        if previous and previous.get("settings") == settings and all(p.exists() for p in outputs):
            log.info("[%s] already done (%s), skipped", name, ", ".join(str(p) for p in outputs))
            timings[name] = {"seconds": 0.0, "skipped": True}
            return
        if previous and previous.get("settings") != settings and owns is not None and owns.exists():
            # Finished with other settings: resuming would mix two runs, so start afresh and keep the old one.
            aside = owns.with_name(f"{owns.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
            owns.rename(aside)
            log.info("[%s] settings changed; the previous output moved to %s", name, aside)
        log.info("[%s] ...", name)
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        done[name] = {"settings": settings, "seconds": seconds}
        atomic_write_json(stages_path, done)
        timings[name] = {"seconds": seconds, "skipped": False}
        log.info("[%s] done in %.0f s", name, seconds)

    train_settings = {k: getattr(cfg, k) for k in ("data", "seed", "size", "epochs", "batch_size")}
    stage(
        "train-paper", train_settings, [paper / "checkpoint.pt"], lambda: _train_paper(cfg, paper, progress), owns=paper
    )
    stage(
        "evaluate-paper",
        train_settings,
        [paper / "evaluation_test.json"],
        lambda: _evaluate_paper(paper, progress),
    )
    profile_settings = {k: getattr(cfg, k) for k in ("profile_size", "profile_runs", "threads", "seed")}
    stage(
        "profile-paper",
        {**profile_settings, **train_settings},
        [paper / "profile_local.json", paper / "profile_jetson_estimate.json"],
        lambda: _profile_paper(cfg, paper, progress),
    )
    search_settings = {
        k: getattr(cfg, k) for k in ("data", "seed", "trials", "search_size", "search_epochs", "steps_per_epoch")
    }
    stage("search", search_settings, [StudyDir(study).db], lambda: _quietly(_search, cfg, study, progress), owns=study)
    compress_settings = {
        **search_settings,
        **{k: getattr(cfg, k) for k in ("top_k", "prune_macs", "round_to", "finetune_epochs")},
    }
    stage("compress", compress_settings, [study / "compressed"], lambda: _compress(cfg, study, progress))
    validate_settings = {
        **compress_settings,  # the variants it re-applies come from the compress stage
        **{
            k: getattr(cfg, k)
            for k in (
                "validate_top_k",
                "validate_epochs",
                "validate_size",
                "validate_seeds",
                "validate_lr",
                "profile_size",
            )  # fmt: skip
        },
    }
    stage(
        "validate", validate_settings, [StudyDir(study).validated_summary_json], lambda: _quietly(_validate, cfg, study)
    )
    stage(
        "reference",
        {**train_settings, **profile_settings},
        [StudyDir(study).reference_json],
        lambda: _write_reference(cfg, paper, study),
    )
    from reports import build_report

    start = time.perf_counter()
    report = build_report(study)
    timings["report"] = {"seconds": time.perf_counter() - start, "skipped": False}
    return DemoResult(out_dir=out, report=report, stages=timings, wall_s=time.perf_counter() - t0)


def _quietly(step: Callable[..., None], *args: Any) -> None:
    """Run ``step`` without the per-epoch and per-split lines of its many short trainings (as the
    search and validate verbs do), unless --debug asked for everything."""
    logger = logging.getLogger("segmentation")
    if logger.getEffectiveLevel() <= logging.DEBUG:
        step(*args)
        return
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        step(*args)
    finally:
        logger.setLevel(before)


def _train_paper(cfg: DemoConfig, paper: Path, progress: bool) -> None:
    from models import PRESETS
    from segmentation import TrainConfig, train

    train_cfg = TrainConfig(data=cfg.data, size=cfg.size, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed)
    train(PRESETS["paper"], train_cfg, paper, resume=True, progress=progress)


def _evaluate_paper(paper: Path, progress: bool) -> None:
    from segmentation import evaluate_checkpoint

    result = evaluate_checkpoint(paper / "checkpoint.pt", split="test", progress=progress)
    result.write(paper / "evaluation_test.json", paper / "evaluation_test.csv")
    log.info("paper network on the synthetic test split:\n%s", result.table())


def _profile_paper(cfg: DemoConfig, paper: Path, progress: bool) -> None:
    from profiling import ESTIMATE_TARGET, profile_model

    ckpt = str(paper / "checkpoint.pt")
    local = profile_model(
        ckpt, target="local", size=cfg.profile_size, threads=cfg.threads, runs=cfg.profile_runs, progress=progress
    )
    atomic_write_json(paper / "profile_local.json", local.to_dict())
    estimate = profile_model(ckpt, target=ESTIMATE_TARGET, size=cfg.profile_size, count=False)
    atomic_write_json(paper / "profile_jetson_estimate.json", estimate.to_dict())
    log.info("%s", local.format_table())


def _search(cfg: DemoConfig, study: Path, progress: bool) -> None:
    from search_spaces import ProfilingOptions, ProxyTraining, SearchConfig, StudyOptions, WorkerOptions, run_search

    summary = run_search(
        SearchConfig(
            study_dir=study,
            seed=cfg.seed,
            study=StudyOptions(trials=cfg.trials),
            training=ProxyTraining(
                data=cfg.data, size=cfg.search_size, epochs=cfg.search_epochs, steps_per_epoch=cfg.steps_per_epoch
            ),
            # Timed at the proxy size, as before the search's default became the deployment size: the demo
            # sets no latency limit, validate re-times its answer at profile_size, and timing 12 trials at
            # 256 px would add about 30 s to a demo that must stay within 15 minutes.
            profiling=ProfilingOptions(threads=cfg.threads, latency_size=cfg.search_size),
            workers=WorkerOptions(progress=progress),
        )
    )
    log.info("%s", summary.table())


def _compress(cfg: DemoConfig, study: Path, progress: bool) -> None:
    from compress import FinetuneSpec, PruneSpec, QuantSpec, compress_study

    compress_study(
        study,
        top_k=cfg.top_k,
        prune=PruneSpec(target_macs=cfg.prune_macs, round_to=cfg.round_to, seed=cfg.seed),
        quantize=QuantSpec(format="int8-static", seed=cfg.seed),
        finetune_spec=FinetuneSpec(epochs=cfg.finetune_epochs),
        progress=progress,
    )


def _validate(cfg: DemoConfig, study: Path) -> None:
    from profiling import TimingOptions
    from validate import ValidateConfig, run_validate

    summary = run_validate(
        ValidateConfig(
            study_dir=study,
            top_k=cfg.validate_top_k,
            epochs=cfg.validate_epochs,
            size=cfg.validate_size,
            lr=cfg.validate_lr,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            seeds=tuple(range(cfg.seed, cfg.seed + cfg.validate_seeds)),
            data=cfg.data,
            latency_size=cfg.profile_size,
            threads=cfg.threads,
            timing=TimingOptions(rounds=cfg.profile_runs),
        )
    )
    log.info("validated at the full budget:\n%s\n%s", summary.table(), summary.verdict())
    log.info("paired with paper over %d seeds:\n%s", cfg.validate_seeds, summary.paired())
    if summary.agreement is not None:
        log.info("proxy vs full-budget Dice: %s", summary.agreement.describe())


def _write_reference(cfg: DemoConfig, paper: Path, study: Path) -> None:
    """The fully trained paper network, shown in the report beside (never inside) the search's front."""
    evaluation = read_json(paper / "evaluation_test.json")
    profiles = [read_json(paper / "profile_local.json"), read_json(paper / "profile_jetson_estimate.json")]
    metrics = read_training_metrics(paper) if (paper / METRICS_JSON).is_file() else {}
    StudyDir(study).write_reference(
        {
            "name": "paper (fully trained)",
            "description": (
                f"The released RTSeg-Net architecture trained for {cfg.epochs} epochs at {cfg.size}x{cfg.size} on "
                f"{cfg.data} (seed {cfg.seed}), evaluated on the held-out test split; the search's trials are "
                "proxy-trained and are not comparable with it."
            ),
            "checkpoint": str(paper / "checkpoint.pt"),
            "train_wall_s": metrics.get("wall_s"),
            "evaluation": evaluation,
            "profiles": [row for p in profiles for row in p.get("rows", [])],
        },
    )
