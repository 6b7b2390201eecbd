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
- FAIL, ``fail_reason``: anything that raised (diverged loss, out of memory, export failure, lost
  device, ...) or a worker that stopped sending heartbeats; does not count.

Per-trial files in ``trials/<n>/``: ``config.json``, ``measurement.json`` (the LatencyRecord and
the CostRecord), ``checkpoint.pt`` and ``metrics.json`` (training history and validation
metrics), ``candidate.json`` (a :class:`common.CandidateRecord`). All written atomically.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from models._model import build_model
from models._presets import PRESETS
from rtseg_core import CandidateRecord, SearchError, SuiteError, atomic_write_json, read_json
from search_spaces._dashboard import publish_outcome
from search_spaces._early_stop import Reference, should_stop
from search_spaces._objectives import DELTA_AOP_UNDEFINED, is_feasible, pareto_indices, violations
from search_spaces._space import suggest_config, summarize_config
from search_spaces._study import REFERENCE_ATTR

if TYPE_CHECKING:
    from search_spaces._search import SearchConfig

log = logging.getLogger(__name__)

# What a trial may raise and still leave the search running (recorded as FAIL with the reason).
# torch.OutOfMemoryError and ONNX Runtime's errors are RuntimeErrors; MemoryError is a CPU OOM.
CATCH: tuple[type[BaseException], ...] = (SuiteError, RuntimeError, MemoryError, ValueError, ArithmeticError, OSError)


def train(*args, **kwargs):
    """``segmentation.train``, imported on first use (segmentation imports this package)."""
    from segmentation._train import train as _train

    return _train(*args, **kwargs)


def evaluate_model(*args, **kwargs):
    """``segmentation.evaluate_model``, imported on first use."""
    from segmentation._evaluate import evaluate_model as _evaluate

    return _evaluate(*args, **kwargs)


def profile_model(*args, **kwargs):
    """``profiling.profile_model``, imported on first use."""
    from profiling._profile import profile_model as _profile

    return _profile(*args, **kwargs)


class Surplus(SearchError):
    """This worker's new trial is not needed: others already finished or run the requested number."""


def counts_towards_target(trial: optuna.trial.FrozenTrial) -> bool:
    """COMPLETE trials and early-stopped ones (trained and judged) make up the requested N."""
    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.PRUNED and bool(trial.user_attrs.get("early_stopped"))
    )


def trial_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Feasible = produced a result (COMPLETE or early-stopped) and meets every constraint."""
    return counts_towards_target(trial) and is_feasible(trial.constraints)


def trial_name(trial: optuna.trial.FrozenTrial | optuna.trial.Trial) -> str:
    ref = trial.user_attrs.get(REFERENCE_ATTR)
    return str(ref) if ref else f"trial-{trial.number}"


def feasible_front(study: optuna.Study, fields: list[str], directions: list[str]) -> list[optuna.trial.FrozenTrial]:
    """The feasible Pareto front of the COMPLETE trials (Optuna's ``best_trials`` ignores feasibility)."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if is_feasible(t.constraints) and t.values is not None and len(t.values) == len(fields)
    ]
    keep = pareto_indices([t.values for t in done], directions)
    return [done[i] for i in keep]


class TrialRunner:
    """The objective function of a search (one instance per worker process).

    ``__call__(trial)`` returns the objective values in the order of ``config.objectives``, or
    raises ``optuna.TrialPruned`` (early stop, rejection) or one of :data:`CATCH` (FAIL). Before
    re-raising a failure it stores ``user_attrs["fail_reason"]`` and the stage it failed in.
    """

    def __init__(self, config: SearchConfig, study_dir: Path, *, dataset: str) -> None:
        self.config = config
        self.study_dir = study_dir
        self.dataset = dataset
        self.objectives = config.parsed_objectives()
        self.constraints = config.constraints()
        self.fields = [o.field for o in self.objectives]
        self.directions = [o.direction for o in self.objectives]
        self.cost_fields = [o.field for o in self.objectives if o.cost]

    # -- entry point -------------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        started = time.perf_counter()
        trial.set_user_attr("stage", "starting")
        try:
            self._check_surplus(trial)
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except CATCH as exc:
            reason = f"{type(exc).__name__}: {str(exc).strip()[:800]}"
            trial.set_user_attr("fail_reason", reason)
            if not isinstance(exc, Surplus):
                log.warning("trial %d failed while %s: %s", trial.number, trial.user_attrs.get("stage"), reason)
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
            publish_outcome(trial, sys.exc_info()[1])  # outcome + constraints optuna-dashboard reads

    # -- the steps ---------------------------------------------------------------------------
    def _check_surplus(self, trial: optuna.Trial) -> None:
        """Exactly N results across workers: a trial goes ahead only if fewer than N finished or
        lower-numbered running trials exist (trial numbers order simultaneous asks)."""
        ahead = 0
        for t in trial.study.get_trials(deepcopy=False):
            if t.number == trial.number:
                continue
            if counts_towards_target(t) or (t.state == TrialState.RUNNING and t.number < trial.number):
                ahead += 1
        if ahead >= self.config.trials:
            raise Surplus(
                f"not run: {ahead} trials had finished or were running when this worker asked for trial "
                f"{trial.number}, and {self.config.trials} were requested (a race between workers)"
            )

    def _run(self, trial: optuna.Trial) -> tuple[float, ...]:
        cfg = self.config
        is_reference = bool(trial.user_attrs.get(REFERENCE_ATTR))
        if is_reference and self._reference_taken(trial):
            # Two workers re-queued a failed reference at once: the later copy is an ordinary trial.
            trial.set_user_attr(REFERENCE_ATTR, "")
            is_reference = False
        trial.set_user_attr("stage", "sampling")
        try:
            arch = suggest_config(trial, cfg.space, check=not is_reference)
        except SuiteError as exc:  # an impossible combination: nothing to train
            self._reject(trial, str(exc))
        if is_reference:
            # The reference is the preset itself, even where a custom space fixes a field elsewhere.
            arch = PRESETS[cfg.space.base]
        trial.set_user_attr("config", arch.to_dict())
        trial.set_user_attr("summary", summarize_config(arch))
        trial_dir = self.study_dir / "trials" / str(trial.number)
        atomic_write_json(trial_dir / "config.json", arch.to_dict())

        model = build_model(arch)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        trial.set_user_attr("params", params)
        over = self.constraints.params_violation(params)
        if over is not None and over > 0 and not is_reference:
            trial.set_constraint("max_params", over)
            self._reject(trial, f"{params:,} parameters > --max-params {self.constraints.max_params:,}")

        # Profile first: costs depend on the architecture only.
        trial.set_user_attr("stage", "profiling")
        report = profile_model(
            model,
            target=cfg.target,
            size=cfg.latency_size,
            backends=("onnxruntime",),
            threads=cfg.threads,
            warmup=cfg.latency_warmup,
            runs=cfg.latency_runs,
            precision=cfg.precision,
            ssh_options=cfg.ssh_options,
            remote_backend=cfg.remote_backend,
            seed=cfg.seed,
            model_name=trial_name(trial),
        )
        if not report.latency or report.cost is None:
            raise SearchError(f"trial {trial.number}: profiling gave no latency or cost ({'; '.join(report.skipped)})")
        lat = report.latency[0]
        cost = report.cost
        atomic_write_json(trial_dir / "measurement.json", {"latency": lat.to_dict(), "costs": cost.to_dict()})
        measured = {"params": cost.params, "macs": cost.macs_fvcore, "latency_ms": lat.median_ms, "fps": lat.fps}
        for key, value in measured.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("latency_kind", lat.kind)
        constraint_values = self.constraints.values(params=cost.params, latency_ms=lat.median_ms, fps=lat.fps)
        for key, value in constraint_values.items():
            trial.set_constraint(key, value)
        if not is_feasible(constraint_values) and not is_reference:
            self._reject(
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
        on_epoch_end = self._epoch_callback(trial, costs, history, stop, use_rule=cfg.early_stop and not is_reference)
        result = train(arch, cfg.train_config(), trial_dir, progress=False, on_epoch_end=on_epoch_end)
        trial.set_user_attr("epochs_trained", len(result.epochs))
        if stop:
            trial.set_user_attr("early_stopped", True)
            trial.set_user_attr("pruned_reason", stop["reason"])
            trial.set_user_attr("stopped_by_trial", stop["reference_trial"])
            trial.set_user_attr("stage", "early-stopped")
            self._merge_metrics(trial_dir, None)
            log.info("trial %d: %s", trial.number, stop["reason"])
            raise optuna.TrialPruned(stop["reason"])

        trial.set_user_attr("stage", "evaluating")
        from models._checkpoint import load_model

        trained, _ = load_model(trial_dir / "checkpoint.pt")
        ev = evaluate_model(
            trained,
            cfg.data,
            split="val",
            size=cfg.size,
            seed=cfg.seed,
            device=cfg.device,
            frames=cfg.frames,
            batch_size=max(cfg.batch_size, 16),
            progress=False,
        )
        summary = ev.summary
        self._merge_metrics(trial_dir, summary)
        dice = _num(summary["mean"].get("dice"))
        dice_ps = _num(summary["PS"].get("dice"))
        dice_fh = _num(summary["FH"].get("dice"))
        delta_aop = _num(summary["mean"].get("delta_aop"))
        if dice is None:
            raise SearchError(f"trial {trial.number}: the validation split gave no Dice (no images?)")
        feasible = is_feasible(constraint_values)
        record = CandidateRecord(
            name=trial_name(trial),
            source="reference" if is_reference else "trial",
            dataset=self.dataset,
            split="val",
            dice=dice,
            dice_ps=dice_ps,
            dice_fh=dice_fh,
            delta_aop_deg=delta_aop,
            params=int(cost.params),
            macs=int(cost.macs_fvcore),
            latency_ms=float(lat.median_ms),
            fps=float(lat.fps),
            latency_kind=lat.kind,
            target=lat.target,
            device=lat.device,
            backend=lat.backend,
            precision=lat.precision,
            threads=lat.threads,
            height=lat.height,
            width=lat.width,
            feasible=feasible,
            trial=trial.number,
            config=arch.to_dict(),
            notes=self._notes(lat),
        )
        atomic_write_json(trial_dir / "candidate.json", record.to_dict())
        for key, value in (("dice", dice), ("dice_ps", dice_ps), ("dice_fh", dice_fh), ("delta_aop_deg", delta_aop)):
            trial.set_user_attr(key, value)
        trial.set_user_attr("feasible", feasible)
        trial.set_user_attr("stage", "done")
        values = []
        for field in self.fields:
            value = getattr(record, field)
            if field == "delta_aop_deg" and value is None:
                trial.set_user_attr(
                    "objective_note", f"delta_aop undefined on every val image: set to {DELTA_AOP_UNDEFINED}"
                )
                value = DELTA_AOP_UNDEFINED
            values.append(float(value))
        return tuple(values)

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _reference_taken(trial: optuna.Trial) -> bool:
        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
            if t.number != trial.number and t.user_attrs.get(REFERENCE_ATTR):
                if t.state == TrialState.COMPLETE or t.number < trial.number:
                    return True
        return False

    def _reject(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr("rejected", reason)
        trial.set_user_attr("stage", "rejected")
        log.info("trial %d rejected before training: %s", trial.number, reason)
        raise optuna.TrialPruned(f"rejected: {reason}")

    def _epoch_callback(
        self,
        trial: optuna.Trial,
        costs: dict[str, float],
        history: list[float],
        stop: dict[str, Any],
        *,
        use_rule: bool,
    ) -> Callable[[Any], None]:
        from segmentation._train import StopTraining

        total = self.config.epochs

        def on_epoch_end(entry) -> None:
            dice = float(entry.val_dice)
            history.append(dice if math.isfinite(dice) else 0.0)
            # Trial.report raises in multi-objective studies: keep the curve in a user attribute.
            trial.set_user_attr("val_dice_history", list(history))
            if not use_rule:
                return
            decision = should_stop(
                entry.epoch, dice, costs, self._references(trial), self.config.early_stop_rule, total_epochs=total
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

    def _merge_metrics(self, trial_dir: Path, val_summary: dict[str, Any] | None) -> None:
        """``metrics.json`` = the trainer's file (history) plus the validation metrics, in one object."""
        path = trial_dir / "metrics.json"
        train_part = read_json(path) if path.is_file() else {}
        if isinstance(train_part, dict) and "training" in train_part:
            train_part = train_part["training"]  # merged before (early-stopped, then re-merged)
        atomic_write_json(path, {"training": train_part, "val": val_summary, "split": "val", "size": self.config.size})

    def _notes(self, lat) -> str:
        cfg = self.config
        parts = [
            f"Dice: proxy training ({cfg.epochs} epochs x {cfg.steps_per_epoch or 'all'} steps, "
            f"batch {cfg.batch_size}, {cfg.size}x{cfg.size}) on {cfg.data}, val split",
            f"latency: {lat.kind}, {lat.backend} {lat.precision}, {lat.height}x{lat.width}",
        ]
        return "; ".join(parts)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
