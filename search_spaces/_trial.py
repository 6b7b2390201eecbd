"""One search trial: sample, reject the impossible, profile, proxy-train, evaluate, record.

Order matters: the architecture is profiled *before* it is trained, because its costs (params,
MACs, latency) do not depend on the weights. That lets a trial be rejected for a cost constraint
without training, and lets the early-stopping rule compare a half-trained trial with the Pareto
members of similar or lower cost.

Outcomes (Optuna state, user attributes):

- COMPLETE: trained, evaluated, every objective set; ``trials/<n>/candidate.json`` written.
- PRUNED, ``early_stopped=True``, ``pruned_reason``: stopped by the early-stopping rule
  (:mod:`search_spaces._early_stop`); counts towards the requested number of trials.
- PRUNED, ``rejected=<reason>``: an impossible combination or one that violates a cost
  constraint, found before training; does not count (the search draws another).
- Every trial: ``seconds`` (wall) and ``cpu_s`` (CPU seconds of the worker process, see
  :func:`cpu_seconds`); a trained one ``epochs_trained`` (updated after every epoch).
- FAIL, ``fail_reason``: a documented trial failure (:data:`CATCH`: any :class:`SuiteError`, such
  as a diverged loss (``TrainingDiverged``), an export or profiling failure or a lost device; or
  running out of memory), or a worker that stopped sending heartbeats; does not count.

Anything else a trial raises (``TypeError``, ``AttributeError``, a plain ``ValueError``,
``OSError`` or ``RuntimeError``) is a bug in the suite or a broken machine, not a property of the
architecture: Optuna marks the trial FAIL and the exception stops the search with its traceback,
instead of being recorded and skipped trial after trial. The loop around a trial (streaks, the
surplus check, ``stage``/``seconds``/``cpu_s``/``fail_reason``) is :mod:`search_spaces._driver`'s.

Per-trial files in ``trials/<n>/`` (names from :mod:`rtseg_core._study`): ``config.json``,
``measurement.json`` (the LatencyRecord and the CostRecord), ``checkpoint.pt`` and
``metrics.json`` (the trainer's history), ``validation.json`` (the validation metrics),
``candidate.json`` (a :class:`rtseg_core.CandidateRecord`). All written atomically.

The three expensive steps are the callables of :class:`TrialSteps` (``segmentation.train``,
``segmentation.evaluate_model``, ``profiling.profile_model`` by default), so a test can wrap one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

from models import RTSegConfig, build_model, count_parameters, load_model
from profiling import LatencyRecord, ProfileReport, profile_model
from rtseg_core import (
    CHECKPOINT,
    MEASUREMENT_JSON,
    CandidateRecord,
    ConfigError,
    SearchError,
    StudyDir,
    SuiteError,
    atomic_write_json,
    is_feasible,
    resolve_device,
    scaled_size,
    violations,
    write_candidate,
    write_validation,
)
from search_spaces._config import SearchConfig
from search_spaces._early_stop import Reference, should_stop
from search_spaces._outcomes import admit, reject
from search_spaces._space import input_size_of, summarize_config
from search_spaces._study import feasible_front, trial_name
from segmentation import EpochLog, EvalResult, StopTraining, TrainResult, evaluate_model, load_split, train

log = logging.getLogger(__name__)

# The documented trial failures: recorded as FAIL with the reason, and the search goes on. Every
# SuiteError (TrainingDiverged, ProfilingError from export or timing, RemoteProfilingError, ...)
# and running out of memory (torch's on a GPU, MemoryError on the CPU). Nothing else: see above.
CATCH: tuple[type[BaseException], ...] = (SuiteError, MemoryError, torch.OutOfMemoryError)
# The value a delta_aop objective takes when no validation image allows an AoP (Optuna refuses NaN):
# the largest possible angle error, so such a trial is never preferred.
DELTA_AOP_UNDEFINED = 180.0


@dataclass(frozen=True)
class TrialSteps:
    """The expensive steps of a trial, with the real signatures of their defaults."""

    train: Callable[..., TrainResult] = train
    evaluate: Callable[..., EvalResult] = evaluate_model
    profile: Callable[..., ProfileReport] = profile_model


def latency_fields(lat: LatencyRecord) -> dict[str, Any]:
    """A latency record's figure and the conditions it was taken under, as CandidateRecord fields.

    One place, so that every candidate (multi-trial, supernet) carries the same conditions.
    """
    return {
        "latency_ms": float(lat.median_ms),
        "fps": float(lat.fps),
        "latency_kind": lat.kind,
        "target": lat.target,
        "device": lat.device,
        "backend": lat.backend,
        "precision": lat.precision,
        "threads": lat.threads,
        "height": lat.height,
        "width": lat.width,
    }


def objective_values(trial: optuna.Trial, record: CandidateRecord, fields: list[str]) -> tuple[float, ...]:
    """The objective values of a recorded candidate in the study's order (both strategies).

    An undefined |dAoP| (no image with both angles) becomes :data:`DELTA_AOP_UNDEFINED`, noted in
    the user attribute ``objective_note``: Optuna refuses NaN and None.
    """
    values = []
    for field in fields:
        value = getattr(record, field)
        if field == "delta_aop_deg" and value is None:
            note = f"delta_aop undefined on every val image: set to {DELTA_AOP_UNDEFINED}"
            trial.set_user_attr("objective_note", note)
            value = DELTA_AOP_UNDEFINED
        values.append(float(value))
    return tuple(values)


def check_trainable(model: torch.nn.Module, *, batch: int, size: int, channels: int, what: str, options: str) -> None:
    """One training-mode forward pass of ``model`` on a ``batch`` x ``channels`` x ``size``² batch of zeros.

    What no config check sees but every trial would hit, e.g. BatchNorm on the 1x1 deepest map of a
    one-image batch. ``what`` names the model and ``options`` the options to change, in the error.
    """
    model.train()
    try:
        with torch.no_grad():
            model(torch.zeros(batch, channels, size, size))
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"{options}: a training step of {what} fails ({type(exc).__name__}: {str(exc).strip()[:300]}), "
            "so every trial would fail; change one of them"
        ) from None


def check_params_limit(smallest: RTSegConfig, params: int, limit: int | None) -> None:
    """Every architecture over ``--max-params`` (its smallest one, with ``params``, is): an error, not a search
    that rejects every trial it draws."""
    if limit is not None and params > limit:
        raise SearchError(
            f"--max-params {limit:,}: even the smallest architecture of the search space has {params:,} "
            f"parameters ({smallest.conv_widths + smallest.token_widths}); raise the limit or narrow the widths"
        )


class TrialRunner:
    """The objective of the multi-trial search (one instance per worker process), run by
    :class:`search_spaces._driver.StudyDriver`.

    ``check()`` finds before the study exists what would make every trial fail; ``__call__(trial)``
    returns the objective values in the order of the config's objectives, or raises
    ``optuna.TrialPruned`` (early stop, rejection), one of :data:`CATCH` (FAIL, the search goes on)
    or anything else (a bug: FAIL, and the search stops). ``user_attrs["stage"]`` says where.
    """

    catch = CATCH

    def __init__(self, config: SearchConfig, study_dir: Path, *, dataset: str, steps: TrialSteps | None = None) -> None:
        self.config = config
        self.study_dir = study_dir
        self.study = StudyDir(study_dir)
        self.dataset = dataset
        self.steps = steps or TrialSteps()
        self.objectives = config.parsed_objectives()
        self.constraints = config.constraints()
        self.fields = [o.field for o in self.objectives]
        self.directions = [o.direction for o in self.objectives]
        self.cost_fields = [o.field for o in self.objectives if o.cost]

    def check(self) -> None:
        """What would make every trial fail, as one error before the study is opened (no trial runs):
        the device, both data splits at ``--size``, every architecture over ``--max-params``, and a
        training step of the space's smallest architecture at ``--size`` and ``--batch-size``."""
        cfg, t = self.config, self.config.training
        resolve_device(t.device)
        splits = [load_split(t.data, split, size=t.size, seed=cfg.seed, frames=t.frames) for split in ("train", "val")]
        smallest = cfg.strategy.space.smallest_config()
        model = build_model(smallest)
        check_params_limit(smallest, count_parameters(model), self.constraints.max_params)
        # The loader drops a last partial batch when the split holds more than one batch.
        batch = min(t.batch_size, len(splits[0]))
        what = f"the smallest architecture of the search space ({summarize_config(smallest)})"
        check_trainable(
            model, batch=batch, size=t.size, channels=splits[0].in_channels, what=what,
            options=f"--size {t.size}, --batch-size {t.batch_size}",
        )  # fmt: skip

    # -- one trial ---------------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        cfg = self.config
        space = cfg.strategy.space
        prof = cfg.profiling
        proxy = cfg.training
        admitted = admit(trial, space, self.constraints, self.study, build_model)
        arch, model, is_reference = admitted.arch, admitted.model, admitted.is_reference
        trial_dir = self.study.trial_dir(trial.number)
        # The deployment input (--input-sizes): timed there, proxy-trained at the same fraction of --size.
        input_size = input_size_of(trial.params, space, prof.latency_size)
        train_size = proxy.size if input_size == prof.latency_size else scaled_size(
            proxy.size, input_size, prof.latency_size
        )  # fmt: skip
        if input_size != prof.latency_size:
            prof = dataclasses.replace(prof, latency_size=input_size)
        trial.set_user_attr("input_size", input_size)
        trial.set_user_attr("train_size", train_size)

        # Profile first: costs depend on the architecture only.
        trial.set_user_attr("stage", "profiling")
        lat, cost = prof.measure(model, seed=cfg.seed, model_name=trial_name(trial), profile=self.steps.profile)
        atomic_write_json(trial_dir / MEASUREMENT_JSON, {"latency": lat.to_dict(), "costs": cost.to_dict()})
        measured = {"params": cost.params, "macs": cost.macs_fvcore, "latency_ms": lat.median_ms, "fps": lat.fps}
        for key, value in measured.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("latency_kind", lat.kind)
        constraint_values = self.constraints.values(params=cost.params, latency_ms=lat.median_ms, fps=lat.fps)
        for key, value in constraint_values.items():
            trial.set_constraint(key, value)
        if not is_feasible(constraint_values) and not is_reference:
            reject(
                trial,
                f"violates {', '.join(violations(constraint_values))} before training "
                f"(params {cost.params:,}, latency {lat.median_ms:.3g} ms = {lat.fps:.3g} fps; limits: "
                f"{self.constraints.describe()})",
            )

        # Proxy training, with the early-stopping rule after each epoch.
        trial.set_user_attr("stage", "training")
        costs = {f: float(measured[f]) for f in self.cost_fields}
        history: list[float] = []
        stop: dict[str, Any] = {}
        use_rule = cfg.strategy.early_stop and not is_reference
        on_epoch_end = self._epoch_callback(trial, costs, history, stop, use_rule=use_rule, reference=is_reference)
        train_config = dataclasses.replace(cfg.train_config(), size=train_size)
        result = self.steps.train(arch, train_config, trial_dir, progress=False, on_epoch_end=on_epoch_end)
        trial.set_user_attr("epochs_trained", len(result.epochs))
        if stop:
            trial.set_user_attr("early_stopped", True)
            trial.set_user_attr("pruned_reason", stop["reason"])
            trial.set_user_attr("stopped_by_trial", stop["reference_trial"])
            trial.set_user_attr("stage", "early-stopped")
            log.info("trial %d: %s", trial.number, stop["reason"])
            raise optuna.TrialPruned(stop["reason"])

        trial.set_user_attr("stage", "evaluating")
        trained, _ = load_model(trial_dir / CHECKPOINT)
        ev = self.steps.evaluate(
            trained,
            proxy.data,
            split="val",
            size=train_size,
            seed=cfg.seed,
            device=proxy.device,
            frames=proxy.frames,
            batch_size=max(proxy.batch_size, 16),
            progress=False,
        )
        summary = ev.summary
        write_validation(trial_dir, split="val", size=train_size, summary=summary.to_dict())
        headline = summary.headline()
        if headline.dice is None:
            raise SearchError(f"trial {trial.number}: the validation split gave no Dice (no images?)")
        feasible = is_feasible(constraint_values)
        record = CandidateRecord(
            name=trial_name(trial),
            source="reference" if is_reference else "trial",
            dataset=self.dataset,
            split="val",
            **headline.to_dict(),
            params=int(cost.params),
            macs=int(cost.macs_fvcore),
            **latency_fields(lat),
            feasible=feasible,
            trial=trial.number,
            config=arch.to_dict(),
            notes=self._notes(lat, train_size, ev.reference_size),
        )
        write_candidate(trial_dir, record)
        for key, value in headline.to_dict().items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("feasible", feasible)
        trial.set_user_attr("stage", "done")
        return objective_values(trial, record, self.fields)

    # -- helpers -----------------------------------------------------------------------------
    def _epoch_callback(
        self,
        trial: optuna.Trial,
        costs: dict[str, float],
        history: list[float],
        stop: dict[str, Any],
        *,
        use_rule: bool,
        reference: bool = False,
    ) -> Callable[[EpochLog], None]:
        total = self.config.training.epochs
        schedule = self.config.fidelity_schedule()

        def on_epoch_end(entry: EpochLog) -> None:
            dice = float(entry.val_dice)
            history.append(dice if math.isfinite(dice) else 0.0)
            # Trial.report raises in multi-objective studies: keep the curve in a user attribute.
            trial.set_user_attr("val_dice_history", list(history))
            # After every epoch, not only at the end: --budget-epochs counts running and failed trials too.
            trial.set_user_attr("epochs_trained", entry.epoch)
            if schedule is not None:  # issue 11: multi-fidelity rungs (search_spaces._fidelity)
                from search_spaces._fidelity_hook import rung_step

                rung = rung_step(trial, schedule, costs, history, self.cost_fields)
                if rung is not None and not rung.promote and not reference:
                    stop.update(reason=rung.reason, reference_trial=None)
                    raise StopTraining(rung.reason)
            if not use_rule:
                return
            decision = should_stop(
                entry.epoch,
                dice,
                costs,
                self._references(trial),
                self.config.strategy.early_stop_rule,
                total_epochs=total,
            )
            if decision is not None:
                stop.update(reason=decision.reason, reference_trial=decision.reference_trial)
                raise StopTraining(decision.reason)

        return on_epoch_end

    def _references(self, trial: optuna.Trial) -> list[Reference]:
        front = feasible_front(trial.study, self.fields, self.directions)
        refs = []
        for t in front:
            costs = {f: float(t.values[self.fields.index(f)]) for f in self.cost_fields}
            refs.append(
                Reference(trial=t.number, costs=costs, dice_history=tuple(t.user_attrs.get("val_dice_history", ())))
            )
        return refs

    def _notes(self, lat: LatencyRecord, train_size: int, reference_size: int) -> str:
        t = self.config.training
        scaled = "" if train_size == t.size else f" (--size {t.size} scaled to the deployment input {lat.height})"
        parts = [
            f"Dice: proxy training ({t.epochs} epochs x {t.steps_per_epoch or 'all'} steps, "
            f"batch {t.batch_size}, {train_size}x{train_size}{scaled}) on {t.data}, val split, scored at the "
            f"reference {reference_size}x{reference_size}",
            f"latency: {lat.kind}, {lat.backend} {lat.precision}, {lat.height}x{lat.width}",
        ]
        return "; ".join(parts)
