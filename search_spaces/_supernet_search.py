"""One-shot search: NSGA-II over the subnets of a trained supernet, each evaluated with inherited weights.

The second search strategy beside the multi-trial one (:mod:`search_spaces._runner`), with the
same loop (:class:`search_spaces._driver.StudyDriver`: sampler, streaks, progress, resume), space,
objectives, constraints, study folder and candidate records, so ``run.py report`` reads it
unchanged. Per trial (one subnet), :class:`SubnetEvaluator`:

1. Optuna draws an architecture (:func:`suggest_config`, the space the supernet was trained on);
   impossible ones and those over ``max_params`` are rejected (PRUNED, ``rejected``) as in the
   multi-trial search, and the rejection-aware NSGA-II learns from them; the space's base preset
   (``paper``) is enqueued first when the supernet contains it (user attribute ``reference``).
2. The subnet is extracted (``build_model(cfg)`` with the sliced weights copied in) and profiled on
   the study's ``target`` (local ONNX Runtime measured, an SSH device, or the roofline estimate),
   once per architecture; with ``predict:TABLE`` its latency comes from the kernel table and its
   kernels from the config (:class:`profiling.SubnetLatency`: no ONNX export, MACs counted once per
   segment); a cost-constraint violation rejects it before evaluation.
3. Its BatchNorm statistics are recalibrated on ``bn_batches`` fixed training batches
   (:func:`models.recalibrate_batchnorm`), then it is evaluated on the validation split with the
   metrics of :func:`segmentation.evaluate_model` (Dice, |dAoP| ...). No training.
4. ``trials/<n>/candidate.json`` (a :class:`rtseg_core.CandidateRecord` with
   ``recipe="supernet-inherited"``), ``config.json`` and ``validation.json`` are written; ``history.csv`` and
   ``study.json`` (``"strategy": "supernet"``) beside them.

Resume: run the same command again (``STUDY/study.db``); ``trials`` counts evaluated subnets.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import torch
from torch.utils.data import DataLoader

from models import PRESETS, RTSegConfig, count_parameters, recalibrate_batchnorm
from profiling import PREDICT_PREFIX, SubnetLatency
from rtseg_core import (
    SUPERNET,
    CandidateRecord,
    ConfigError,
    DataError,
    SearchError,
    StudyDir,
    StudySettings,
    SuiteError,
    SupernetSettings,
    dataset_path,
    is_feasible,
    violations,
    write_candidate,
    write_validation,
)
from search_spaces._config import fixed_settings
from search_spaces._driver import StudyDriver
from search_spaces._files import latency_table
from search_spaces._outcomes import admit, reject
from search_spaces._results import SupernetSearchSummary, summarize_study
from search_spaces._space import reference_params, summarize_config
from search_spaces._study import redact_url
from search_spaces._supernet import Supernet, calibration_batches, load_supernet, smallest_config
from search_spaces._supernet_config import SupernetSearchConfig
from search_spaces._trial import check_params_limit, latency_fields, objective_values
from segmentation import DataSpec, EvalSummary, MetricAccumulator, load_split

log = logging.getLogger(__name__)

RECIPE = "supernet-inherited"
# What one subnet may raise and leave the search running (FAIL with the reason).
CATCH: tuple[type[BaseException], ...] = (SuiteError, RuntimeError, MemoryError, ValueError, ArithmeticError, OSError)
# history.csv re-reads every trial: after each of hundreds of seconds-long subnets it would cost more than they do.
HISTORY_EVERY = 25


def run_supernet_search(
    config: SupernetSearchConfig,
    *,
    evaluator: SubnetEvaluator | None = None,
    enqueue: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]] = (),
) -> SupernetSearchSummary:
    """Run (or resume) the one-shot search described by ``config`` (module docstring).

    ``evaluator``: one already made (and checked) for ``config``; ``enqueue``: (params, user
    attributes) of subnets evaluated before the sampler proposes any (the predictor search's front).
    """
    evaluator = evaluator or SubnetEvaluator(config)
    objectives = config.parsed_objectives()
    study_dir = config.resolved_study_dir()
    driver = StudyDriver(
        study_dir,
        study_name=config.resolved_study_name(),
        study=config.study,
        workers=config.workers,
        sampler=config.sampling.sampler,
        population_size=config.sampling.population_size,
        seed=config.seed,
        fields=[o.field for o in objectives],
        directions=[o.direction for o in objectives],
        threads=config.profiling.threads,
        unit="subnet",
        history_every=HISTORY_EVERY,
        verb="supernet search",
        inputs=[
            evaluator.supernet.path,
            dataset_path(evaluator.train_cfg.data),
            latency_table(config.profiling.target),
        ],
    )
    params = evaluator.reference_params()
    reference = None if params is None else (evaluator.supernet.space.base, params)
    result = driver.run(
        evaluator,
        settings=evaluator.settings,
        fixed_keys=fixed_settings(SUPERNET),
        reference=reference,
        enqueue=enqueue,
    )
    summary = summarize_study(
        result.study,
        driver.fields,
        driver.directions,
        study_dir=study_dir,
        storage=result.storage,
        constraints=config.constraints().to_dict(),
        trials_requested=config.study.trials,
        trials_run=result.trials_run,
        wall_s=result.wall_s,
    )
    minutes = result.wall_s / 60
    evaluated = evaluator.evaluated
    return SupernetSearchSummary(
        **{f.name: getattr(summary, f.name) for f in dataclasses.fields(summary)},
        subnets_per_minute=evaluated / minutes if minutes > 0 else math.nan,
    )


class SubnetEvaluator:
    """The objective of the one-shot search: one subnet extracted, profiled, BatchNorm-recalibrated
    and evaluated (module docstring). ``evaluated`` counts the subnets this run completed."""

    catch = CATCH

    def __init__(self, config: SupernetSearchConfig) -> None:
        self.config = config
        self.study_dir = config.resolved_study_dir()
        self.supernet: Supernet = load_supernet(config.supernet)
        sn, ev = self.supernet, config.evaluation
        self.train_cfg = dataclasses.replace(sn.train, data=ev.data or sn.train.data, size=ev.size or sn.train.size)
        self.dataset = DataSpec.parse(self.train_cfg.data).kind
        self.objectives = config.parsed_objectives()
        self.fields = [o.field for o in self.objectives]
        self.constraints = config.constraints()
        latency_size = config.profiling.latency_size or self.train_cfg.size
        self.profiling = dataclasses.replace(config.profiling, latency_size=latency_size)
        self._latency_cache: dict[RTSegConfig, tuple[Any, int | None]] = {}
        self._subnet_latency: SubnetLatency | None = None
        self._reference: dict[str, Any] | None = None
        self.evaluated = 0

    # -- set-up --------------------------------------------------------------------------------
    def reference_params(self) -> dict[str, Any] | None:
        """The base preset's parameters when the supernet contains it (it is then trial 0)."""
        base = PRESETS[self.supernet.space.base]
        try:
            self.supernet.net.check_member(base)
        except ConfigError as exc:
            log.warning(
                "the reference %r is not a subnet of this supernet (%s); no reference trial",
                self.supernet.space.base,
                exc,
            )
            return None
        self._reference = reference_params(self.supernet.space)
        return self._reference

    def settings(self, url: str) -> StudySettings:
        """What ``study.json`` records (and, as a dict, what a resumed study is checked against)."""
        sn, cfg = self.supernet, self.config
        return StudySettings(
            objectives=tuple((o.field, o.direction) for o in self.objectives),
            constraints=self.constraints,
            target=self.profiling.target,
            precision=self.profiling.precision,
            threads=self.profiling.threads,
            data=self.train_cfg.data,
            size=self.train_cfg.size,
            latency_size=self.profiling.latency_size,
            sampler=cfg.sampling.sampler,
            population_size=cfg.sampling.population_size,
            seed=cfg.seed,
            space=sn.space.to_dict(),
            trials_requested=cfg.study.trials,
            storage=redact_url(url),
            study_name=cfg.resolved_study_name(),
            reference=sn.space.base if self._reference is not None else None,
            search=SupernetSettings(
                path=str(sn.path),
                epoch=sn.epoch,
                container=summarize_config(sn.net.config),
                train=dict(vars(sn.train)),
                sandwich=dict(vars(sn.sandwich)),
                recipe=RECIPE,
                bn_batches=cfg.evaluation.bn_batches,
                val_batches=cfg.evaluation.val_batches,
                split="val",
            ),
        )

    def check(self) -> None:
        """The data every subnet uses, built once (a bad size or data set fails here), and the
        smallest subnet under ``max_params`` and through BatchNorm recalibration and evaluation."""
        tc = self.train_cfg
        self.bn_images = calibration_batches(tc, self.config.evaluation.bn_batches)
        val = load_split(tc.data, "val", size=tc.size, seed=tc.seed, augment=False, frames=tc.frames)
        self.val_batches = []
        for i, batch in enumerate(DataLoader(val, batch_size=max(tc.batch_size, 16), shuffle=False)):
            if self.config.evaluation.val_batches is not None and i >= self.config.evaluation.val_batches:
                break
            self.val_batches.append((batch["image"], batch["mask"], list(batch["id"])))
        if not self.val_batches or not self.bn_images:
            raise DataError(f"--data {tc.data}: the validation or training split is empty at size {tc.size}")
        smallest = smallest_config(self.supernet.space)
        model = self.supernet.net.extract(smallest)
        check_params_limit(smallest, count_parameters(model), self.constraints.max_params)
        try:
            self._inherited_metrics(model, self.bn_images[:1], self.val_batches[:1])
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"size {tc.size}, batch {tc.batch_size}: the smallest subnet ({summarize_config(smallest)}) cannot be "
                f"recalibrated and evaluated ({type(exc).__name__}: {str(exc).strip()[:300]}), so no subnet could"
            ) from None

    # -- one subnet ----------------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        sn = self.supernet
        study = StudyDir(self.study_dir)
        admitted = admit(trial, sn.space, self.constraints, study, sn.net.extract)
        arch, model, is_reference = admitted.arch, admitted.model, admitted.is_reference
        params, trial_dir = admitted.params, study.trial_dir(trial.number)

        trial.set_user_attr("stage", "profiling")
        lat, macs = self.latency(arch, model, name=f"trial-{trial.number}")
        for key, value in (("macs", macs), ("latency_ms", lat.median_ms), ("fps", lat.fps)):
            trial.set_user_attr(key, value)
        constraint_values = self.constraints.values(params=params, latency_ms=lat.median_ms, fps=lat.fps)
        for key, value in constraint_values.items():
            trial.set_constraint(key, value)
        if not is_feasible(constraint_values) and not is_reference:
            reject(
                trial,
                f"violates {', '.join(violations(constraint_values))} "
                f"(params {params:,}, latency {lat.median_ms:.3g} ms)",
            )

        trial.set_user_attr("stage", "evaluating")
        summary = self._inherited_metrics(model, self.bn_images, self.val_batches)
        headline = summary.headline()
        if headline.dice is None:
            raise SearchError(f"trial {trial.number}: the validation split gave no Dice (no images?)")
        record = CandidateRecord(
            name=f"{sn.space.base}" if is_reference else f"trial-{trial.number}",
            source="reference" if is_reference else "trial",
            dataset=self.dataset,
            split="val",
            **headline.to_dict(),
            params=int(params),
            macs=None if macs is None else int(macs),
            **latency_fields(lat),
            feasible=is_feasible(constraint_values),
            trial=trial.number,
            recipe=RECIPE,
            config=arch.to_dict(),
            notes=self._notes(lat),
        )
        write_validation(trial_dir, split="val", size=self.train_cfg.size, summary=summary)
        write_candidate(trial_dir, record)
        for key, value in headline.to_dict().items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("feasible", record.feasible)
        trial.set_user_attr("stage", "done")
        values = objective_values(trial, record, self.fields)
        self.evaluated += 1
        return values

    def latency(self, arch: RTSegConfig, model: torch.nn.Module, *, name: str) -> tuple[Any, int | None]:
        """(latency record, MACs) of a subnet, once per architecture. With ``predict:TABLE`` the
        kernels come from the config and the table (:class:`profiling.SubnetLatency`: no export,
        missing kernels timed on the table's target); otherwise :meth:`ProfilingOptions.measure`."""
        if arch not in self._latency_cache:
            if self.profiling.target.startswith(PREDICT_PREFIX):
                cost = self.subnet_latency().cost(arch, name=name)
                self._latency_cache[arch] = (self.subnet_latency().record(cost), cost.macs)
            else:
                lat, cost = self.profiling.measure(model, seed=self.config.seed, model_name=name)
                self._latency_cache[arch] = (lat, cost.macs_fvcore)
        return self._latency_cache[arch]

    def subnet_latency(self) -> SubnetLatency:
        """The table's predictor for subnets (``predict:TABLE`` targets), made once."""
        if self._subnet_latency is None:
            p = self.profiling
            latency = SubnetLatency(p.target[len(PREDICT_PREFIX) :], size=p.latency_size, ssh_options=p.ssh_options)
            latency.predictor.check_request(precision=p.precision, threads=p.threads, batch=1)
            self._subnet_latency = latency
        return self._subnet_latency

    def inherited_dice(self, arch: RTSegConfig) -> float:
        """The headline Dice of subnet ``arch`` with inherited weights, as :meth:`__call__` computes it
        (BatchNorm recalibrated on the fixed batches, the validation batches); :meth:`check` first."""
        summary = self._inherited_metrics(self.supernet.net.extract(arch), self.bn_images, self.val_batches)
        dice = summary.headline().dice
        if dice is None:
            raise SearchError(f"{summarize_config(arch)}: the validation split gave no Dice (no images?)")
        return float(dice)

    @torch.no_grad()
    def _inherited_metrics(self, model: torch.nn.Module, bn_images: list, val_batches: list) -> EvalSummary:
        """Recalibrate BatchNorm on the fixed batches, then the metrics of ``evaluate_model`` on val."""
        recalibrate_batchnorm(model, bn_images)
        model.eval()
        acc = MetricAccumulator()
        for images, masks, ids in val_batches:
            acc.update(model(images).argmax(1), masks, ids)
        return acc.summary()

    def _notes(self, lat) -> str:
        sn = self.supernet
        return (
            f"Dice: inherited supernet weights ({sn.path.name} epoch {sn.epoch}, sandwich rule; "
            f"{sn.train.steps_per_epoch or 'all'} steps/epoch, batch {sn.train.batch_size}), no training, "
            f"BatchNorm recalibrated on {self.config.evaluation.bn_batches} training batches; "
            f"{self.train_cfg.data} val split, {self.train_cfg.size}x{self.train_cfg.size}; "
            f"latency: {lat.kind}, {lat.backend} {lat.precision}, {lat.height}x{lat.width}"
        )
