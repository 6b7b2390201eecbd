"""One-shot search: NSGA-II over the subnets of a trained supernet, each evaluated with inherited weights.

The second search strategy beside the multi-trial one (:mod:`search_spaces._runner`), with the
same space, objectives, constraints, study folder and candidate records, so ``run.py report``
reads it unchanged. Per trial (one subnet):

1. Optuna draws an architecture (:func:`suggest_config`, the space the supernet was trained on);
   impossible ones and those over ``max_params`` are rejected (PRUNED, ``rejected``) as in the
   multi-trial search; the space's base preset (``paper``) is enqueued first when the supernet
   contains it (user attribute ``reference``).
2. The subnet is extracted (``build_model(cfg)`` with the sliced weights copied in) and profiled on
   the study's ``target`` (local ONNX Runtime measured, an SSH device, or the roofline estimate),
   once per architecture; a cost-constraint violation rejects it before evaluation.
3. Its BatchNorm statistics are recalibrated on ``bn_batches`` fixed training batches
   (:func:`models.recalibrate_batchnorm`), then it is evaluated on the validation split with the
   metrics of :func:`segmentation.evaluate_model` (Dice, |dAoP| ...). No training.
4. ``trials/<n>/candidate.json`` (a :class:`rtseg_core.CandidateRecord` with
   ``recipe="supernet-inherited"``), ``config.json`` and ``validation.json`` are written; ``history.csv`` and
   ``study.json`` (``"strategy": "supernet"``) beside them.

Resume: run the same command again (``STUDY/study.db``); ``trials`` counts evaluated subnets.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState
from torch.utils.data import DataLoader

from models import PRESETS, RTSegConfig, count_parameters, recalibrate_batchnorm
from profiling import profile_model
from rtseg_core import (
    CONFIG_JSON,
    DEFAULT_OBJECTIVES,
    CandidateRecord,
    ConfigError,
    Constraints,
    SearchError,
    StudyDir,
    StudySettings,
    SuiteError,
    SupernetSettings,
    atomic_write_json,
    is_feasible,
    parse_objectives,
    violations,
    write_candidate,
    write_validation,
)
from search_spaces._files import write_environment, write_history, write_study_json
from search_spaces._space import reference_params, suggest_config, summarize_config
from search_spaces._study import (
    REFERENCE_ATTR,
    feasible_front,
    make_storage,
    open_study,
    redact_url,
    resolve_storage_url,
    trial_name,
)
from search_spaces._supernet import Supernet, calibration_batches, load_supernet
from search_spaces._trial import DELTA_AOP_UNDEFINED, cpu_seconds, latency_fields
from segmentation import DataSpec, EvalSummary, MetricAccumulator, load_split

log = logging.getLogger(__name__)

RECIPE = "supernet-inherited"
FIXED_SETTINGS = (
    "strategy",
    "objectives",
    "constraints",
    "data",
    "size",
    "latency_size",
    "target",
    "precision",
    "threads",
    "supernet",
    "space",
)
SAMPLERS = ("nsga2", "random")
# What one subnet may raise and leave the search running (FAIL with the reason).
CATCH: tuple[type[BaseException], ...] = (SuiteError, RuntimeError, MemoryError, ValueError, ArithmeticError, OSError)


@dataclass(frozen=True)
class SupernetSearchConfig:
    """One supernet search. ``data``/``size`` default to the supernet's training data and size."""

    study_dir: str | Path
    supernet: str | Path
    trials: int = 200
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    min_fps: float | None = None
    max_latency_ms: float | None = None
    max_params: int | None = None
    target: str = "local"
    threads: int = 1
    latency_size: int | None = None
    latency_warmup: int = 3
    latency_runs: int = 10
    precision: str = "fp32"
    remote_backend: str = "auto"
    ssh_options: Any = None
    sampler: str = "nsga2"
    population_size: int = 16
    seed: int = 0
    data: str | None = None
    size: int | None = None
    bn_batches: int = 4
    val_batches: int | None = None
    max_consecutive_failures: int = 5
    max_consecutive_rejections: int = 200
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.objectives, str):
            object.__setattr__(self, "objectives", tuple(o.strip() for o in self.objectives.split(",") if o.strip()))
        for name in ("min_fps", "max_latency_ms", "max_params"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                object.__setattr__(self, name, None)
        if not isinstance(self.trials, int) or self.trials < 0:
            raise ConfigError(f"--trials: must be an integer >= 0, got {self.trials!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"--sampler: must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.population_size < 2:
            raise ConfigError(f"--population-size: NSGA-II needs at least 2, got {self.population_size}")
        for name in ("bn_batches", "threads", "latency_runs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= 1, got {getattr(self, name)!r}")
        parse_objectives(self.objectives)
        self.constraints()

    def constraints(self) -> Constraints:
        return Constraints(min_fps=self.min_fps, max_latency_ms=self.max_latency_ms, max_params=self.max_params)


@dataclass(frozen=True)
class SupernetSearchSummary:
    study_dir: Path
    trials_run: int
    counts: dict[str, int]
    front: tuple[dict[str, Any], ...]  # feasible Pareto front: name, trial, summary, objective values
    wall_s: float
    subnets_per_minute: float  # evaluated (COMPLETE) subnets of this run per minute of wall time


def run_supernet_search(config: SupernetSearchConfig) -> SupernetSearchSummary:
    """Run (or resume) the one-shot search described by ``config`` (module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        previous = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            return _SupernetSearch(config).run()
        finally:
            optuna.logging.set_verbosity(previous)


class _SupernetSearch:
    def __init__(self, config: SupernetSearchConfig) -> None:
        self.config = config
        self.study_dir = Path(config.study_dir).expanduser().resolve()
        self.supernet: Supernet = load_supernet(config.supernet)
        sn = self.supernet
        self.train_cfg = sn.train
        if config.data is not None or config.size is not None:
            from dataclasses import replace

            self.train_cfg = replace(sn.train, data=config.data or sn.train.data, size=config.size or sn.train.size)
        self.objectives = parse_objectives(config.objectives)
        self.fields = [o.field for o in self.objectives]
        self.directions = [o.direction for o in self.objectives]
        self.constraints = config.constraints()
        self.latency_size = config.latency_size or self.train_cfg.size
        self._latency_cache: dict[RTSegConfig, Any] = {}

    # -- set-up --------------------------------------------------------------------------------
    def settings(self, url: str) -> StudySettings:
        sn, cfg = self.supernet, self.config
        return StudySettings(
            objectives=tuple((o.field, o.direction) for o in self.objectives),
            constraints=self.constraints,
            target=cfg.target,
            precision=cfg.precision,
            threads=cfg.threads,
            data=self.train_cfg.data,
            size=self.train_cfg.size,
            latency_size=self.latency_size,
            sampler=cfg.sampler,
            population_size=cfg.population_size,
            seed=cfg.seed,
            space=sn.space.to_dict(),
            trials_requested=cfg.trials,
            storage=redact_url(url),
            study_name=self.study_dir.name,
            reference=sn.space.base if self._reference_params is not None else None,
            search=SupernetSettings(
                path=str(sn.path),
                epoch=sn.epoch,
                container=summarize_config(sn.net.config),
                train=dict(vars(sn.train)),
                sandwich=dict(vars(sn.sandwich)),
                recipe=RECIPE,
                bn_batches=cfg.bn_batches,
                val_batches=cfg.val_batches,
                split="val",
            ),
        )

    def _reference(self) -> dict[str, Any] | None:
        """The base preset's parameters when the supernet contains it (it is then trial 0)."""
        base = PRESETS[self.supernet.space.base]
        try:
            self.supernet.net.check_member(base)
            return reference_params(self.supernet.space)
        except ConfigError as exc:
            log.warning(
                "the reference %r is not a subnet of this supernet (%s); no reference trial",
                self.supernet.space.base,
                exc,
            )
            return None

    def run(self) -> SupernetSearchSummary:
        cfg = self.config
        start = time.perf_counter()
        spec = DataSpec.parse(self.train_cfg.data)
        self.dataset = spec.kind
        self.study_dir.mkdir(parents=True, exist_ok=True)
        url = resolve_storage_url(None, self.study_dir)
        storage = make_storage(url, heartbeat_interval=60, grace_period=None)
        self._reference_params = ref = self._reference()
        settings = self.settings(url)
        study, _created = open_study(
            storage,
            study_name=self.study_dir.name,
            directions=self.directions,
            metric_names=self.fields,
            settings=settings.to_dict(),
            fixed_keys=FIXED_SETTINGS,
            reference_params=ref,
            reference_name=self.supernet.space.base,
        )
        # Reseeded with the study's size, so a resumed search does not re-propose the first run's subnets.
        text = f"supernet:{cfg.seed}:{len(study.get_trials(deepcopy=False))}"
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        study.sampler = (
            optuna.samplers.NSGAIISampler(population_size=cfg.population_size, seed=seed)
            if cfg.sampler == "nsga2"
            else optuna.samplers.RandomSampler(seed=seed)
        )
        write_study_json(self.study_dir, settings)
        write_environment(self.study_dir, threads=cfg.threads)
        self._prepare_data()
        done_before = self._complete(study)
        run = failures = rejections = 0
        with contextlib.ExitStack() as stack:
            bar = None
            if cfg.progress:
                from tqdm.auto import tqdm

                bar = stack.enter_context(
                    tqdm(total=cfg.trials, initial=min(done_before, cfg.trials), desc="supernet search", unit="subnet")
                )
            while self._complete(study) < cfg.trials:
                # A subnet left RUNNING by a killed run becomes FAIL once its heartbeat is stale.
                optuna.storages.fail_stale_trials(study)
                self._last = None
                study.optimize(self._objective, n_trials=1, catch=CATCH, callbacks=[self._after])
                run += 1
                last = self._last
                if last is None:
                    continue
                if last.state == TrialState.FAIL:
                    failures += 1
                    if failures >= cfg.max_consecutive_failures:
                        raise SearchError(
                            f"{failures} subnets in a row failed; the last (trial {last.number}) with: "
                            f"{last.user_attrs.get('fail_reason', 'unknown reason')}"
                        )
                elif last.state == TrialState.PRUNED:
                    rejections += 1
                    if rejections >= cfg.max_consecutive_rejections:
                        raise SearchError(
                            f"{rejections} subnets in a row were rejected; the last: "
                            f"{last.user_attrs.get('rejected')}. Loosen the constraints"
                        )
                else:
                    failures = rejections = 0
                    if bar is not None:
                        bar.update(1)
                if run % 25 == 0:
                    write_history(self.study_dir, study, self.fields)
        write_history(self.study_dir, study, self.fields)
        wall = time.perf_counter() - start
        evaluated = self._complete(study) - done_before
        return SupernetSearchSummary(
            study_dir=self.study_dir,
            trials_run=run,
            counts=self._counts(study),
            front=tuple(self._front(study)),
            wall_s=round(wall, 3),
            subnets_per_minute=evaluated / (wall / 60) if wall > 0 else float("nan"),
        )

    def _prepare_data(self) -> None:
        """The fixed calibration batches and the validation batches, built once for every subnet."""
        tc = self.train_cfg
        self.bn_images = calibration_batches(tc, self.config.bn_batches)
        val = load_split(tc.data, "val", size=tc.size, seed=tc.seed, augment=False, frames=tc.frames)
        self.val_batches = []
        for i, batch in enumerate(DataLoader(val, batch_size=max(tc.batch_size, 16), shuffle=False)):
            if self.config.val_batches is not None and i >= self.config.val_batches:
                break
            self.val_batches.append((batch["image"], batch["mask"], list(batch["id"])))

    # -- one subnet ----------------------------------------------------------------------------
    def _objective(self, trial: optuna.Trial) -> tuple[float, ...]:
        started = time.perf_counter()
        cpu_started = time.process_time()
        trial.set_user_attr("stage", "starting")
        try:
            return self._evaluate(trial)
        except optuna.TrialPruned:
            raise
        except CATCH as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {str(exc).strip()[:800]}")
            log.warning("subnet trial %d failed while %s: %s", trial.number, trial.user_attrs.get("stage"), exc)
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
            trial.set_user_attr("cpu_s", cpu_seconds(cpu_started))  # this subnet: BN recalibration, eval, profiling

    def _evaluate(self, trial: optuna.Trial) -> tuple[float, ...]:
        cfg, sn = self.config, self.supernet
        is_reference = bool(trial.user_attrs.get(REFERENCE_ATTR))
        trial.set_user_attr("stage", "sampling")
        try:
            arch = suggest_config(trial, sn.space, check=not is_reference)
        except SuiteError as exc:
            self._reject(trial, str(exc))
        if is_reference:
            arch = PRESETS[sn.space.base]
        trial.set_user_attr("config", arch.to_dict())
        trial.set_user_attr("summary", summarize_config(arch))
        trial_dir = StudyDir(self.study_dir).trial_dir(trial.number)
        atomic_write_json(trial_dir / CONFIG_JSON, arch.to_dict())
        model = sn.net.extract(arch)
        params = count_parameters(model)
        trial.set_user_attr("params", params)
        over = self.constraints.params_violation(params)
        if over is not None and over > 0 and not is_reference:
            trial.set_constraint("max_params", over)
            self._reject(trial, f"{params:,} parameters > --max-params {self.constraints.max_params:,}")

        trial.set_user_attr("stage", "profiling")
        report = self._latency_cache.get(arch)
        if report is None:
            report = profile_model(
                model,
                target=cfg.target,
                size=self.latency_size,
                backends=("onnxruntime",),
                threads=cfg.threads,
                warmup=cfg.latency_warmup,
                runs=cfg.latency_runs,
                precision=cfg.precision,
                ssh_options=cfg.ssh_options,
                remote_backend=cfg.remote_backend,
                seed=cfg.seed,
                model_name=f"trial-{trial.number}",
            )
            if not report.latency or report.cost is None:
                raise SearchError(
                    f"trial {trial.number}: profiling gave no latency or cost ({'; '.join(report.skipped)})"
                )
            self._latency_cache[arch] = report
        lat, cost = report.latency[0], report.cost
        for key, value in (("macs", cost.macs_fvcore), ("latency_ms", lat.median_ms), ("fps", lat.fps)):
            trial.set_user_attr(key, value)
        constraint_values = self.constraints.values(params=params, latency_ms=lat.median_ms, fps=lat.fps)
        for key, value in constraint_values.items():
            trial.set_constraint(key, value)
        if not is_feasible(constraint_values) and not is_reference:
            self._reject(
                trial,
                f"violates {', '.join(violations(constraint_values))} "
                f"(params {params:,}, latency {lat.median_ms:.3g} ms)",
            )

        trial.set_user_attr("stage", "evaluating")
        summary = self._inherited_metrics(model)
        dice = _num(summary.mean.dice)
        if dice is None:
            raise SearchError(f"trial {trial.number}: the validation split gave no Dice (no images?)")
        record = CandidateRecord(
            name=f"{sn.space.base}" if is_reference else f"trial-{trial.number}",
            source="reference" if is_reference else "trial",
            dataset=self.dataset,
            split="val",
            dice=dice,
            dice_ps=_num(summary.ps.dice),
            dice_fh=_num(summary.fh.dice),
            delta_aop_deg=_num(summary.mean.delta_aop),
            params=int(params),
            macs=None if cost.macs_fvcore is None else int(cost.macs_fvcore),
            **latency_fields(lat),
            feasible=is_feasible(constraint_values),
            trial=trial.number,
            recipe=RECIPE,
            config=arch.to_dict(),
            notes=self._notes(lat),
        )
        write_validation(trial_dir, split="val", size=self.train_cfg.size, summary=summary)
        write_candidate(trial_dir, record)
        for key in ("dice", "dice_ps", "dice_fh", "delta_aop_deg"):
            trial.set_user_attr(key, getattr(record, key))
        trial.set_user_attr("feasible", record.feasible)
        trial.set_user_attr("stage", "done")
        values = []
        for f in self.fields:
            value = getattr(record, f)
            values.append(float(DELTA_AOP_UNDEFINED if value is None else value))
        return tuple(values)

    @torch.no_grad()
    def _inherited_metrics(self, model: torch.nn.Module) -> EvalSummary:
        """Recalibrate BatchNorm on the fixed batches, then the metrics of ``evaluate_model`` on val."""
        recalibrate_batchnorm(model, self.bn_images)
        model.eval()
        acc = MetricAccumulator()
        for images, masks, ids in self.val_batches:
            acc.update(model(images).argmax(1), masks, ids)
        return acc.summary()

    def _notes(self, lat) -> str:
        sn = self.supernet
        return (
            f"Dice: inherited supernet weights ({sn.path.name} epoch {sn.epoch}, sandwich rule; "
            f"{sn.train.steps_per_epoch or 'all'} steps/epoch, batch {sn.train.batch_size}), no training, "
            f"BatchNorm recalibrated on {self.config.bn_batches} training batches; {self.train_cfg.data} val split, "
            f"{self.train_cfg.size}x{self.train_cfg.size}; latency: {lat.kind}, {lat.backend} {lat.precision}, "
            f"{lat.height}x{lat.width}"
        )

    def _reject(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr("rejected", reason)
        trial.set_user_attr("stage", "rejected")
        raise optuna.TrialPruned(f"rejected: {reason}")

    def _after(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._last = trial

    # -- summaries -----------------------------------------------------------------------------
    @staticmethod
    def _complete(study: optuna.Study) -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    @staticmethod
    def _counts(study: optuna.Study) -> dict[str, int]:
        counts = {"complete": 0, "rejected": 0, "failed": 0}
        for t in study.get_trials(deepcopy=False):
            key = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "rejected", TrialState.FAIL: "failed"}.get(
                t.state
            )
            if key:
                counts[key] += 1
        return counts

    def _front(self, study: optuna.Study) -> list[dict[str, Any]]:
        out = [
            {"trial": t.number, "name": trial_name(t), "summary": t.user_attrs.get("summary", ""),
             **dict(zip(self.fields, t.values)), "params": t.user_attrs.get("params")}
            for t in feasible_front(study, self.fields, self.directions)
        ]  # fmt: skip
        cost = next((f for f in self.fields if f != "dice"), self.fields[0])
        return sorted(out, key=lambda m: (m[cost], m["trial"]))


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
