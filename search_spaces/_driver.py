"""The one search loop: :class:`StudyDriver` runs an :class:`Objective` until the study holds N results.

Both strategies run through it: the multi-trial search (:class:`search_spaces._trial.TrialRunner`)
and the one-shot search (:class:`search_spaces._supernet_search.SubnetEvaluator`). As in Optuna's own
optimize loop, the objective varies and the loop does not. :meth:`StudyDriver.run`:

1. ``objective.check()``: whatever would make every trial fail (the data at that size, the
   smallest architecture, the limits) raises there, one error, before the study exists.
2. Opens (or creates) the study (:func:`search_spaces._study.open_study`: a storage with a
   heartbeat, the settings check, the enqueued reference), keeps the stored epoch budget unless
   the run gives another, seeds the sampler (:mod:`search_spaces._optuna_setup`), writes ``study.json`` and
   ``environment.json``.
3. Runs one trial at a time (``study.optimize(n_trials=1)``) until ``trials`` have finished
   (COMPLETE, or early-stopped: :func:`counts_towards_target`), counting earlier runs and other
   workers, or the study's trials have trained ``budget_epochs`` epochs. Before each trial, trials
   of dead workers become FAIL and a failed reference is queued again. Around each trial the
   driver records ``stage``, ``seconds``, ``cpu_s``, ``fail_reason`` and the outcome
   (:func:`search_spaces._dashboard.publish_outcome`), and refuses a surplus trial (workers racing
   for the last one). ``history.csv`` is rewritten after every ``history_every`` trials and at the end.
4. Stops with :class:`SearchError` after ``max_consecutive_failures`` failed trials in a row, or
   ``max_consecutive_rejections`` rejected ones in a row (:class:`search_spaces._outcomes.Streaks`).
5. Shows progress (:class:`search_spaces._progress.Progress`): a bar on a terminal, else one log
   line per finished trial.

Ctrl-C ends the run with one line (``KeyboardInterrupt`` carrying it, which the CLI prints): the
trial it interrupted is FAIL, the finished ones are kept, and the same command resumes.

Sampler seeds (:func:`search_spaces._optuna_setup.sampler_seed`): ``seed`` and the number of
trials already in the study (a resumed study does not re-propose the architectures of the first
run), and the process id for shared storage (workers must not propose the same architectures;
their interleaving cannot be reproduced anyway).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from rtseg_core import MultiTrialSettings, SearchError, StudyDir, StudySettings
from search_spaces._config import STORED, StudyOptions, WorkerOptions
from search_spaces._dashboard import publish_outcome
from search_spaces._files import open_study_folder, write_environment, write_history, write_study_json
from search_spaces._optuna_setup import make_sampler, optuna_session, sampler_seed, storage_errors
from search_spaces._outcomes import Streaks, Surplus
from search_spaces._progress import Progress
from search_spaces._results import epochs_trained
from search_spaces._study import (
    REFERENCE_ATTR,
    SETTINGS_ATTR,
    counts_towards_target,
    make_storage,
    open_study,
    redact_url,
    resolve_storage_url,
)

log = logging.getLogger(__name__)


class Objective(Protocol):
    """A strategy's evaluation of one trial, as the driver calls it.

    ``check()`` runs once, before the study is opened: it raises (a :class:`SuiteError`, one line)
    for whatever would make every trial fail. ``__call__(trial)`` returns the objective values in the
    study's order, or raises ``optuna.TrialPruned`` (``_outcomes.reject``, or an early stop), one of
    ``catch`` (a documented trial failure: the trial is FAIL with its reason and the search goes on),
    or anything else (a bug: the trial is FAIL and the exception stops the search).
    """

    catch: tuple[type[BaseException], ...]

    def check(self) -> None: ...

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]: ...


def cpu_seconds(since: float) -> float:
    """CPU seconds of this whole process (every thread: torch, ONNX Runtime) since ``since``
    (a ``time.process_time()``). Comparable across machine loads where wall seconds are not; it
    does not include a remote device's time (``ssh://`` targets) or other processes."""
    return round(time.process_time() - since, 3)


@dataclass(frozen=True)
class DriveResult:
    """What one :meth:`StudyDriver.run` leaves: the study, the trials this run ran (any outcome), its
    wall time, the epoch budget it kept to (None: none) and the storage URL without its password."""

    study: optuna.Study
    trials_run: int
    wall_s: float
    budget_epochs: int | None
    storage: str


class StudyDriver:
    """One worker's run of a study (see the module docstring).

    ``study``/``workers``: the run's :class:`StudyOptions` and :class:`WorkerOptions`; ``sampler``,
    ``population_size``, ``seed``; ``fields``/``directions``: the objectives in the study's order;
    ``unit`` names a trial in messages ("trial", "subnet"); ``threads`` goes to environment.json.
    ``verb`` marks the study folder (``search``, ``supernet search``); ``inputs``: what the run reads
    (the dataset, a supernet, a latency table), which the folder may not be or hold (issue 23).
    """

    def __init__(
        self,
        study_dir: Path,
        *,
        study_name: str,
        study: StudyOptions,
        workers: WorkerOptions,
        sampler: str,
        population_size: int,
        seed: int,
        fields: Sequence[str],
        directions: Sequence[str],
        threads: int | None,
        unit: str = "trial",
        history_every: int = 1,
        verb: str = "search",
        inputs: Sequence[str | os.PathLike | None] = (),
    ) -> None:
        self.study_dir = Path(study_dir)
        self.study_name = study_name
        self.options = study
        self.workers = workers
        self.sampler = sampler
        self.population_size = population_size
        self.seed = seed
        self.fields = list(fields)
        self.directions = list(directions)
        self.threads = threads
        self.unit = unit
        self.history_every = history_every
        self.verb = verb
        self.inputs = list(inputs)
        self.budget_epochs: int | None = None
        self.reference: tuple[str, dict[str, Any]] | None = None
        self._last_number: int | None = None
        self._running: int | None = None
        self._run = 0

    def run(
        self,
        objective: Objective,
        *,
        settings: Callable[[str], StudySettings],
        fixed_keys: tuple[str, ...],
        reference: tuple[str, Mapping[str, Any]] | None,
        enqueue: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]] = (),
    ) -> DriveResult:
        """Check, open, loop (module docstring). ``settings(url)``: what study.json records (with
        the epoch budget as the driver resolves it) and a resumed study must match in ``fixed_keys``;
        ``reference``: (name, Optuna params) of the trial every study contains, or None;
        ``enqueue``: (Optuna params, user attributes) of trials to run before the sampler proposes
        any (the one-shot search's predicted front), each once even when the run is resumed."""
        start = time.perf_counter()
        self.reference = None if reference is None else (reference[0], dict(reference[1]))
        with optuna_session(), storage_errors(self.options.storage, self.study_dir):
            objective.check()
            study, url = self._open(settings, fixed_keys)
            for params, attrs in enqueue:
                study.enqueue_trial(dict(params), user_attrs=dict(attrs), skip_if_exists=True)
            trials_run = self.loop(study, objective)
        wall = round(time.perf_counter() - start, 3)
        return DriveResult(study, trials_run, wall, self.budget_epochs, redact_url(url))

    # -- opening -------------------------------------------------------------------------------
    def _open(self, settings_of: Callable[[str], StudySettings], fixed_keys: tuple[str, ...]):
        # new, empty or a study; created and marked before anything else is written there
        open_study_folder(self.study_dir, verb=self.verb, inputs=self.inputs)
        url = resolve_storage_url(self.options.storage, self.study_dir)
        storage = make_storage(
            url, heartbeat_interval=self.workers.heartbeat_interval, grace_period=self.workers.grace_period
        )
        settings = settings_of(url)
        study, created = open_study(
            storage,
            study_name=self.study_name,
            directions=self.directions,
            metric_names=self.fields,
            settings=settings.to_dict(),
            fixed_keys=fixed_keys,
            reference_params=None if self.reference is None else self.reference[1],
            reference_name="" if self.reference is None else self.reference[0],
        )
        if created:
            self._check_fresh_dir()
        budget = getattr(settings.search, "budget_epochs", None)  # a new study: the run's (None for STORED)
        self.budget_epochs = budget if created else self._resumed_budget(study)
        if isinstance(settings.search, MultiTrialSettings):  # the one strategy that trains, so has a budget
            settings = dataclasses.replace(
                settings, search=dataclasses.replace(settings.search, budget_epochs=self.budget_epochs)
            )
        shared = not url.startswith("sqlite")
        seed = sampler_seed(self.seed, len(study.get_trials(deepcopy=False)), shared=shared)
        study.sampler = make_sampler(
            self.sampler, seed=seed, population_size=self.population_size, trials=self.options.trials
        )
        write_study_json(self.study_dir, settings)
        write_environment(self.study_dir, threads=self.threads)
        return study, url

    def _resumed_budget(self, study: optuna.Study) -> int | None:
        """The stored epoch budget, unless this run gives another (then stored for the next runs)."""
        stored_settings = dict(study.user_attrs.get(SETTINGS_ATTR) or {})
        stored = stored_settings.get("budget_epochs")
        if stored is not None and (isinstance(stored, bool) or not isinstance(stored, int) or stored < 1):
            raise SearchError(
                f"study {self.study_name!r}: its stored epoch budget is {stored!r}, not a positive integer; "
                "give --budget-epochs N (0 for none) to replace it"
            )
        given = self.options.budget_epochs
        if given is STORED:
            if stored is not None:
                log.info(
                    "keeping the study's epoch budget of %d epochs (give --budget-epochs to change it, 0 for none)",
                    stored,
                )
            return stored
        if given != stored:
            log.info(
                "epoch budget %s (the study had %s); stored for the next runs",
                "none" if given is None else f"{given} epochs",
                "none" if stored is None else f"{stored} epochs",
            )
            study.set_user_attr(SETTINGS_ATTR, {**stored_settings, "budget_epochs": given})
        return given

    def _check_fresh_dir(self) -> None:
        trials_dir = StudyDir(self.study_dir).trials_dir
        if trials_dir.is_dir() and any(trials_dir.iterdir()):
            raise SearchError(
                f"{trials_dir}: holds trials of an earlier study, but the storage has no study named "
                f"{self.study_name!r} (was study.db deleted?). Move {trials_dir} away or use a new --study folder"
            )

    # -- the loop ------------------------------------------------------------------------------
    def loop(self, study: optuna.Study, objective: Objective) -> int:
        """Run trials of ``objective`` in ``study`` until the stop rule says so; the number run.

        Public for a study opened elsewhere (a test's in-memory study); :meth:`run` is the entry point.
        """
        requested = self.options.trials
        streaks = Streaks(self.workers, unit=self.unit, study_dir=self.study_dir)
        attempt = self._attempt(objective, requested)
        catch = (*objective.catch, Surplus)
        self._run = 0
        progress = Progress(
            bar=self.workers.progress, total=requested, unit=self.unit, fields=self.fields, directions=self.directions
        )
        try:
            with progress:
                while True:
                    optuna.storages.fail_stale_trials(study)
                    self._fail_unstarted(study)
                    trials = study.get_trials(deepcopy=False)
                    done = sum(counts_towards_target(t) for t in trials)
                    running = sum(t.state == TrialState.RUNNING for t in trials)
                    progress.show(study, done)
                    if done >= requested:
                        return self._run
                    if self.budget_epochs is not None and epochs_trained(trials) >= self.budget_epochs:
                        # Running trials (this study's other workers) finish on their own: no waiting here.
                        return self._run
                    self._ensure_reference(study, trials)
                    if running and done + running >= requested:
                        # Other workers hold the last trials: wait (a dead one's turns FAIL after its grace period).
                        time.sleep(self.workers.poll_interval)
                        continue
                    self._last_number = self._running = None
                    try:
                        study.optimize(attempt, n_trials=1, catch=catch, callbacks=[self._after_trial])
                    except ValueError as exc:
                        if not str(exc).startswith("Cannot tell a "):
                            raise
                        # Another worker finished this trial first (its heartbeat looked stale to them, as
                        # on an overloaded machine): the storage keeps their verdict; this worker goes on.
                        log.warning(
                            "%s %s was marked finished by another worker while this one ran it (its heartbeat "
                            "missed the grace period: an overloaded machine?); its result is dropped",
                            self.unit,
                            self._running,
                        )
                    self._running = None
                    self._run += 1
                    last = self._last_own_trial(study)
                    if last is None:
                        continue
                    progress.finished(last, done + counts_towards_target(last))
                    streaks.add(last)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(self._interrupted(study)) from None
        finally:
            # Also when a bug stops the search: history.csv then shows the failed trial and its reason.
            write_history(self.study_dir, study, self.fields)

    def _attempt(self, objective: Objective, requested: int) -> Callable[[optuna.Trial], tuple[float, ...]]:
        """``objective`` with what every trial records around it (see the module docstring)."""

        def attempt(trial: optuna.Trial) -> tuple[float, ...]:
            started = time.perf_counter()
            cpu_started = time.process_time()
            self._running = trial.number  # for the Ctrl-C line (set back by the loop, not here)
            # First thing, while the heartbeat already runs: this trial started (see _fail_unstarted).
            trial.set_user_attr("stage", "starting")
            try:
                _check_surplus(trial, requested)
                _settle_reference(trial)
                return objective(trial)
            except optuna.TrialPruned:
                raise
            except KeyboardInterrupt:
                trial.set_user_attr("fail_reason", f"interrupted (Ctrl-C) while {trial.user_attrs.get('stage')}")
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc).strip()[:800]}"
                trial.set_user_attr("fail_reason", reason)
                if isinstance(exc, objective.catch) and not isinstance(exc, Surplus):
                    stage = trial.user_attrs.get("stage")
                    log.warning("%s %d failed while %s: %s", self.unit, trial.number, stage, reason)
                raise
            finally:
                trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
                trial.set_user_attr("cpu_s", cpu_seconds(cpu_started))
                publish_outcome(trial, sys.exc_info()[1])  # outcome + constraints: dashboard and NSGA-II read them

        return attempt

    def _after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._last_number = trial.number
        if (self._run + 1) % self.history_every == 0:
            write_history(self.study_dir, study, self.fields)

    def _last_own_trial(self, study: optuna.Study) -> FrozenTrial | None:
        number = self._last_number
        if number is None:
            return None
        return next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)

    def _ensure_reference(self, study: optuna.Study, trials: list[FrozenTrial]) -> None:
        """Queue the reference again if it failed (e.g. its worker was killed): every study must contain it."""
        if self.reference is None:
            return
        alive = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        if any(t.user_attrs.get(REFERENCE_ATTR) and t.state in alive for t in trials):
            return
        name, params = self.reference
        study.enqueue_trial(dict(params), user_attrs={REFERENCE_ATTR: name})
        log.info("the reference %s failed earlier; queued %r again", self.unit, name)

    def _fail_unstarted(self, study: optuna.Study) -> None:
        """FAIL the RUNNING trials that never started their objective and are older than the grace period.

        A worker killed between Optuna's ``ask`` and its first heartbeat leaves a RUNNING trial
        without a heartbeat, which ``fail_stale_trials`` never fails; without this, every later
        worker would wait for it forever. A started trial has ``stage``, set first thing while the
        heartbeat thread already runs.
        """
        grace = self.workers.grace_period or 2 * self.workers.heartbeat_interval
        now = datetime.now()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            started = t.datetime_start
            if "stage" in t.user_attrs or started is None or (now - started).total_seconds() <= grace:
                continue
            try:
                study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                log.warning("%s %d never started its objective (worker killed?): marked FAIL", self.unit, t.number)
            except (RuntimeError, ValueError):
                pass  # another worker changed it first

    def _interrupted(self, study: optuna.Study) -> str:
        """The one line a Ctrl-C leaves (the CLI prints it after ``interrupted:``)."""
        done = sum(counts_towards_target(t) for t in study.get_trials(deepcopy=False))
        where = "" if self._running is None else f"{self.unit} {self._running} was running and is recorded as failed; "
        return (
            f"{where}the study's {done} finished {self.unit}s are kept in {self.study_dir}: "
            "run the same command again to resume"
        )


def _check_surplus(trial: optuna.Trial, requested: int) -> None:
    """Exactly N results across workers: a trial goes ahead only if fewer than N finished or
    lower-numbered running trials exist (trial numbers order simultaneous asks)."""
    ahead = 0
    for t in trial.study.get_trials(deepcopy=False):
        if t.number == trial.number:
            continue
        if counts_towards_target(t) or (t.state == TrialState.RUNNING and t.number < trial.number):
            ahead += 1
    if ahead >= requested:
        raise Surplus(
            f"not run: {ahead} trials had finished or were running when this worker asked for trial "
            f"{trial.number}, and {requested} were requested (a race between workers)"
        )


def _settle_reference(trial: optuna.Trial) -> None:
    """Two workers re-queued a failed reference at once: the later copy becomes an ordinary trial."""
    if not trial.user_attrs.get(REFERENCE_ATTR):
        return
    for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if t.number != trial.number and t.user_attrs.get(REFERENCE_ATTR):
            if t.state == TrialState.COMPLETE or t.number < trial.number:
                trial.set_user_attr(REFERENCE_ATTR, "")
                return
