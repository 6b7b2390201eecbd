"""The one-shot search at predictor speed: NSGA-II on an accuracy predictor and a kernel latency table.

``supernet search --predictor`` (and ``search --strategy supernet --predictor``), in four steps:

1. **Samples**: ``samples`` distinct subnets drawn uniformly from the supernet's space (seeded,
   :func:`random_config`), each scored by its inherited-weight Dice exactly as ``supernet search``
   scores a subnet (:meth:`SubnetEvaluator.inherited_dice`: BatchNorm recalibrated on the fixed
   training batches, the validation batches). One JSON line per subnet in
   ``STUDY/predictor_samples.jsonl``: a stopped run keeps them and the same command resumes.
2. **Accuracy predictor** (:func:`fit_accuracy_predictor`): the model chosen by cross-validated rank
   agreement, its held-out Spearman/Kendall (bootstrap intervals) and RMSE printed and written to
   ``STUDY/predictor.json``.
3. **NSGA-II on the predictors**: ``evaluations`` subnets proposed by Optuna's NSGA-II
   (``population_size``; an in-memory study, constraints as Optuna constraints), each scored by
   the accuracy predictor and by the kernel latency table (:class:`profiling.SubnetLatency`:
   kernels from the config, no export; MACs and parameters counted once per segment and from the
   config). Only the study's objectives that these give are allowed: Dice, latency, parameters, MACs.
4. **Re-scoring**: the predicted feasible Pareto front (at most ``rescore`` members, evenly spread
   along the first cost objective) is evaluated for real by ``supernet search`` itself
   (:func:`run_supernet_search` with the front enqueued, plus the reference): the study folder,
   its candidates and ``study.json`` are a supernet search's, so ``validate`` and ``report`` take it.

CPU seconds (``time.process_time``) of each step are recorded in ``predictor.json`` (the samples'
per line, so their total survives a resumed run; ``report --compare`` adds samples and NSGA-II to the
study's compute), and the subnets per CPU-minute of steps 1 and 3 are printed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from models import RTSegConfig
from rtseg_core import ConfigError, StudyDir, atomic_write_json, dataset_path, is_feasible, rank_agreement
from search_spaces._accuracy_predictor import AccuracyPredictor, fit_accuracy_predictor
from search_spaces._files import latency_table, open_study_folder
from search_spaces._optuna_setup import optuna_session
from search_spaces._results import SupernetSearchSummary
from search_spaces._space import check_config, params_from_config, suggest_config, summarize_config
from search_spaces._supernet import random_config
from search_spaces._supernet_config import SupernetSearchConfig
from search_spaces._supernet_search import SubnetEvaluator, run_supernet_search

log = logging.getLogger(__name__)

PREDICTED_FIELDS = ("dice", "latency_ms", "params", "macs")
PREDICTED_ATTR = "predicted"  # user attribute of a re-scored trial: what the predictors said


@dataclass(frozen=True)
class PredictorOptions:
    """How the predictor search runs (module docstring)."""

    samples: int = 300
    evaluations: int = 5000
    population_size: int = 64
    holdout: float = 0.2
    rescore: int = 16

    def __post_init__(self) -> None:
        for name, low in (("samples", 20), ("evaluations", 1), ("population_size", 2), ("rescore", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= {low}, got {value!r}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"--holdout: must be a share in (0, 1), got {self.holdout!r}")


@dataclass(frozen=True)
class PredictorSearchResult:
    predictor: AccuracyPredictor
    summary: SupernetSearchSummary
    samples_cpu_s: float
    samples_evaluated: int  # in this run (the rest came from the samples file)
    search: NSGARun
    front: list[dict[str, Any]]
    front_agreement: Any | None  # predicted vs re-scored Dice on the front (n >= 3)

    @property
    def predicted_per_cpu_minute(self) -> float:
        return self.search.per_cpu_minute

    @property
    def inherited_per_cpu_minute(self) -> float:
        return self.samples_evaluated / (self.samples_cpu_s / 60) if self.samples_cpu_s > 0 else float("nan")


def run_predictor_search(
    config: SupernetSearchConfig, options: PredictorOptions, *, evaluator: SubnetEvaluator | None = None
) -> PredictorSearchResult:
    """Samples, predictor, NSGA-II on the predictors, re-scoring (module docstring); ``evaluator``: one
    already made for ``config`` (its segment cache and timed kernels are kept)."""
    fields = [o.field for o in config.parsed_objectives()]
    unknown = [f for f in fields if f not in PREDICTED_FIELDS]
    if unknown:
        raise ConfigError(
            f"--objectives: the predictor search predicts {', '.join(PREDICTED_FIELDS)}, not {', '.join(unknown)}"
        )
    if latency_table(config.profiling.target) is None:
        raise ConfigError(
            f"--target {config.profiling.target}: the predictor search takes latency from a kernel latency table, "
            "--target predict:TABLE (build one with `rtseg-nas latency-table build`)"
        )
    evaluator = evaluator or SubnetEvaluator(config)
    evaluator.check()
    study_dir = config.resolved_study_dir()
    open_study_folder(
        study_dir,
        verb="supernet search",
        inputs=[
            evaluator.supernet.path,
            dataset_path(evaluator.train_cfg.data),
            latency_table(config.profiling.target),
        ],
    )
    study = StudyDir(study_dir)
    space = evaluator.supernet.space

    configs, dice, evaluated, sample_cpu, samples_total_cpu = _samples(evaluator, study, options.samples, config.seed)
    predictor = fit_accuracy_predictor(configs, dice, space, seed=config.seed, holdout=options.holdout)
    log.info("%s", predictor.describe())

    latency = evaluator.subnet_latency()
    nsga = predictor_nsga(config, options, predictor, latency)
    front = _front(nsga.study, fields, options.rescore)
    log.info(
        "NSGA-II on the predictors: %d subnets in %.1f CPU s (%.0f per CPU-minute; %.1f CPU s of it exported new "
        "segments and timed new kernels once); predicted front %d, re-scoring %d",
        nsga.scored,
        nsga.cpu_s,
        nsga.per_cpu_minute,
        nsga.fill_cpu_s,
        len(_front(nsga.study, fields, None)),
        len(front),
    )

    reference = 1 if evaluator.reference_params() is not None else 0
    n_trials = len(front) + reference
    rescore_config = dataclasses.replace(config, study=dataclasses.replace(config.study, trials=n_trials))
    enqueue = [
        (params_from_config(RTSegConfig.from_dict(t["config"]), space), {PREDICTED_ATTR: t["values"]}) for t in front
    ]
    summary = run_supernet_search(rescore_config, evaluator=evaluator, enqueue=enqueue)
    rescored = _rescored(summary, front)
    agreement = None
    if len(rescored) >= 3:
        agreement = rank_agreement(
            [r["predicted_dice"] for r in rescored],
            [r["dice"] for r in rescored],
            seed=config.seed,
            a_label="predicted Dice",
            b_label="re-scored inherited Dice",
        )
    atomic_write_json(
        study.predictor_json,
        {
            "predictor": predictor.to_dict(),
            "samples": {
                "n": len(configs),
                "evaluated_this_run": evaluated,
                "cpu_s_this_run": round(sample_cpu, 3),
                "cpu_s": None if samples_total_cpu is None else round(samples_total_cpu, 3),  # all n, every run
                "per_cpu_minute": evaluated / (sample_cpu / 60) if sample_cpu > 0 else None,
            },
            "search": {
                "sampler": "optuna NSGAIISampler",
                "population_size": options.population_size,
                "evaluations": nsga.scored,
                "cpu_s": round(nsga.cpu_s, 3),
                "per_cpu_minute": nsga.per_cpu_minute,
                "cache_fill_cpu_s": round(nsga.fill_cpu_s, 3),
                "per_cpu_minute_without_cache_fill": nsga.per_cpu_minute_warm,
                "segments_exported": latency.segments.exports,
                "segments_read_from_cache": latency.segments.loaded,
                "segment_export_cpu_s": round(latency.segments.export_cpu_s, 3),
                "kernel_timing_cpu_s": round(latency.timing_cpu_s, 3),
                "kernels_timed": latency.timed,
                "latency_table": str(latency.table.path),
            },
            "front": rescored,
            "front_agreement": None if agreement is None else agreement.to_dict(),
        },
    )
    return PredictorSearchResult(
        predictor=predictor,
        summary=summary,
        samples_cpu_s=sample_cpu,
        samples_evaluated=evaluated,
        search=nsga,
        front=rescored,
        front_agreement=agreement,
    )


@dataclass(frozen=True)
class NSGARun:
    """One NSGA-II run on the predictors: the in-memory study, subnets scored, CPU seconds, and the
    part of them that filled the caches (segments exported, kernels timed: once per segment/kernel)."""

    study: optuna.Study
    scored: int
    cpu_s: float
    fill_cpu_s: float

    @property
    def per_cpu_minute(self) -> float:
        return self.scored / (self.cpu_s / 60) if self.cpu_s > 0 else float("nan")

    @property
    def per_cpu_minute_warm(self) -> float:
        warm = self.cpu_s - self.fill_cpu_s
        return self.scored / (warm / 60) if warm > 0 else float("nan")


def predictor_nsga(
    config: SupernetSearchConfig, options: PredictorOptions, predictor: AccuracyPredictor, latency
) -> NSGARun:
    """NSGA-II over ``options.evaluations`` subnets scored by ``predictor`` and ``latency``
    (a :class:`profiling.SubnetLatency`), the study's objectives and constraints (module docstring)."""
    space = predictor.space
    fields = [o.field for o in config.parsed_objectives()]
    constraints = config.constraints()
    fill0 = latency.segments.export_cpu_s + latency.timing_cpu_s
    cpu0 = time.process_time()
    scored = 0

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        nonlocal scored
        try:
            cfg = suggest_config(trial, space)
        except ConfigError as exc:
            raise optuna.TrialPruned(str(exc)) from None
        cost = latency.cost(cfg, name=f"predicted-{trial.number}")
        values = {
            "dice": float(predictor.predict([cfg])[0]),
            "latency_ms": cost.latency_ms,
            "params": float(cost.params),
            "macs": float(cost.macs),
        }
        limits = constraints.values(params=cost.params, latency_ms=cost.latency_ms, fps=1000.0 / cost.latency_ms)
        for key, value in limits.items():  # NSGA-II's constraint-dominance reads them
            trial.set_constraint(key, float(value))
        trial.set_user_attr("constraints", [float(v) for v in limits.values()])
        trial.set_user_attr("values", values)
        trial.set_user_attr("config", cfg.to_dict())
        scored += 1
        return tuple(values[f] for f in fields)

    with optuna_session():
        sampler = optuna.samplers.NSGAIISampler(population_size=options.population_size, seed=config.seed)
        study = optuna.create_study(directions=[o.direction for o in config.parsed_objectives()], sampler=sampler)
        study.optimize(objective, n_trials=options.evaluations)
    cpu = time.process_time() - cpu0
    fill = latency.segments.export_cpu_s + latency.timing_cpu_s - fill0
    return NSGARun(study=study, scored=scored, cpu_s=cpu, fill_cpu_s=fill)


def _samples(
    evaluator: SubnetEvaluator, study: StudyDir, n: int, seed: int
) -> tuple[list[RTSegConfig], list[float], int, float, float | None]:
    """``n`` distinct subnets and their inherited Dice; earlier lines of the samples file are kept. Also the
    number evaluated and CPU seconds spent in this run, and the CPU seconds of all ``n`` over every run
    (None when a line predates the per-sample ``cpu_s``)."""
    path = study.predictor_samples
    known: dict[RTSegConfig, float] = {}
    sample_cpu: dict[RTSegConfig, float | None] = {}  # CPU seconds per sample (None: a line from before they were kept)
    if path.is_file():
        for i, line in enumerate(path.read_text().splitlines()):
            try:
                entry = json.loads(line)
                cfg = RTSegConfig.from_dict(entry["config"], source=f"{path}: line {i + 1}")
                known[cfg] = float(entry["dice"])
                sample_cpu[cfg] = float(entry["cpu_s"]) if "cpu_s" in entry else None
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}: line {i + 1} is not a sample ({exc}); move the file away") from None
    rng = random.Random(f"predictor-samples:{seed}")
    wanted: list[RTSegConfig] = []
    seen: set[RTSegConfig] = set()
    space = evaluator.supernet.space
    for _ in range(100 * n):
        if len(wanted) == n:
            break
        cfg = random_config(space, rng)
        if cfg not in seen and check_config(cfg, space) is None:
            seen.add(cfg)
            wanted.append(cfg)
    if len(wanted) < n:
        raise ConfigError(f"--samples {n}: the supernet's space gave only {len(wanted)} distinct subnets")
    cpu0 = time.process_time()
    evaluated = 0
    with path.open("a") as out:
        for cfg in wanted:
            if cfg in known:
                continue
            c0 = time.process_time()
            known[cfg] = evaluator.inherited_dice(cfg)
            sample_cpu[cfg] = round(time.process_time() - c0, 4)
            out.write(json.dumps({"config": cfg.to_dict(), "dice": known[cfg], "cpu_s": sample_cpu[cfg]}) + "\n")
            out.flush()
            evaluated += 1
    cpu = time.process_time() - cpu0
    if evaluated:
        log.info(
            "predictor samples: %d subnets evaluated with inherited weights in %.1f CPU s (%.1f per CPU-minute)",
            evaluated,
            cpu,
            evaluated / (cpu / 60) if cpu > 0 else float("nan"),
        )
    spent = [sample_cpu[c] for c in wanted]
    total = None if any(c is None for c in spent) else float(sum(spent))  # type: ignore[arg-type]
    return wanted, [known[c] for c in wanted], evaluated, cpu, total


def _front(study: optuna.Study, fields: list[str], limit: int | None) -> list[dict[str, Any]]:
    """The feasible predicted Pareto front, one per architecture, at most ``limit`` evenly spread."""
    members: dict[str, dict[str, Any]] = {}
    for t in study.best_trials:
        if not is_feasible(dict(enumerate(t.user_attrs.get("constraints") or [0.0]))):
            continue
        key = json.dumps(t.user_attrs["config"], sort_keys=True)
        members.setdefault(key, {"config": t.user_attrs["config"], "values": t.user_attrs["values"]})
    front = list(members.values())
    cost = next((f for f in fields if f != "dice"), fields[0])
    front.sort(key=lambda m: m["values"][cost])
    if limit is not None and len(front) > limit:
        picks = np.unique(np.round(np.linspace(0, len(front) - 1, limit)).astype(int))
        front = [front[i] for i in picks]
    return front


def _rescored(summary: SupernetSearchSummary, front: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each front member's predicted values beside its re-scored candidate (from the trial folders)."""
    by_config = {json.dumps(m["config"], sort_keys=True): m for m in front}
    out = []
    for cand, _ in sorted(StudyDir(summary.study_dir).read_candidates(("trials",)), key=lambda c: c[0].trial or 0):
        member = by_config.get(json.dumps(cand.config, sort_keys=True))
        if member is None:
            continue
        out.append(
            {
                "trial": cand.trial,
                "summary": summarize_config(RTSegConfig.from_dict(cand.config)),
                "predicted_dice": member["values"]["dice"],
                "dice": cand.dice,
                "latency_ms": cand.latency_ms,
                "predicted_latency_ms": member["values"]["latency_ms"],
                "params": cand.params,
            }
        )
    return out
