"""Multi-objective architecture search over the RTSeg-Net family: ``run_search(SearchConfig) -> SearchSummary``.

What one call does:

1. Opens (or creates) the Optuna study in ``config.storage`` (default ``STUDY_DIR/study.db``) with
   a heartbeat; a new study gets the ``paper`` architecture enqueued as its first trial, so every
   study contains the reference point. Trials left RUNNING by a killed worker become FAIL.
2. Runs trials (:mod:`search_spaces._trial`) until ``config.trials`` of them have finished
   (COMPLETE or early-stopped), counting those of earlier runs and of other workers: running the
   same command again resumes, and a larger ``--trials`` runs only the missing ones. Rejected and
   failed trials do not count; ``max_consecutive_failures`` failures in a row stop the search.
   With ``config.study.budget_epochs`` the search also stops proposing trials once the epochs
   trained by all the study's trials (``epochs_trained``, read from the storage, so earlier runs and
   other workers count; early-stopped trials count the epochs they trained) reach the budget;
   trials already running finish, so the budget is exceeded by at most the epochs of the trials in
   flight. ``trials`` then is an upper bound.
3. Writes ``study.json``, ``environment.json`` and, after every trial, ``history.csv``.
4. Returns the feasible Pareto front and whether any member beats the reference on every objective.

Reproducibility: with one worker and SQLite, ``seed`` fixes the sampler, the data split and
the training of every trial (measured latencies still vary from run to run). A resumed study
reseeds its sampler with ``seed`` and the number of trials already in the study, so it does not
re-propose the architectures of the first run. Workers sharing a study through a server also mix
in their process id (the interleaving of their trials cannot be reproduced anyway).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from models import PRESETS, RTSegConfig, build_model, count_parameters
from profiling import torch_threads
from rtseg_core import ConfigError, SearchError, StudyDir, is_feasible, resolve_threads
from search_spaces._config import FIXED_SETTINGS, SearchConfig
from search_spaces._dashboard import RejectionAwareNSGAIISampler
from search_spaces._files import write_environment, write_history, write_study_json
from search_spaces._results import FrontMember, SearchSummary
from search_spaces._space import reference_params
from search_spaces._study import (
    REFERENCE_ATTR,
    counts_towards_target,
    feasible_front,
    make_storage,
    open_study,
    redact_url,
    resolve_storage_url,
    trial_name,
)
from search_spaces._trial import CATCH, Surplus, TrialRunner, TrialSteps
from segmentation import DataSpec

log = logging.getLogger(__name__)


def run_search(config: SearchConfig, *, steps: TrialSteps | None = None) -> SearchSummary:
    """Run (or resume) the search described by ``config``; see the module docstring.

    ``steps`` replaces the trainer, evaluator or profiler of every trial (tests wrap them).
    Raises :class:`SearchError` when the study cannot be opened or continued (storage, changed
    settings, every architecture over ``--max-params``, too many failures in a row), and
    :class:`ConfigError` for bad data or settings. An exception that is not a documented trial
    failure (see :mod:`search_spaces._trial`) propagates unchanged.
    """
    import sqlalchemy.exc

    try:
        return SearchRunner(config, steps=steps).run()
    except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError) as exc:
        # a read-only, full or vanished database: say which, not a SQLAlchemy traceback
        cause = exc.__cause__ or exc
        detail = str(getattr(cause, "orig", None) or cause).splitlines()[0][:200]
        url = redact_url(resolve_storage_url(config.study.storage, config.resolved_study_dir()))
        raise SearchError(
            f"--storage {url}: the study database refused a write ({detail}); is it read-only, on a full disk, "
            "or removed while the search ran?"
        ) from None


class SearchRunner:
    """One worker's run of a search: open the study, run trials until N have finished, summarise."""

    def __init__(self, config: SearchConfig, *, steps: TrialSteps | None = None) -> None:
        self.config = config
        self.steps = steps
        self._last_number: int | None = None
        self._reference_params: dict = {}
        self.study_dir = config.resolved_study_dir()
        self.objectives = config.parsed_objectives()
        self.fields = [o.field for o in self.objectives]
        self.directions = [o.direction for o in self.objectives]

    def run(self) -> SearchSummary:
        # Heartbeats, metric names and fail_stale_trials are "experimental" in Optuna 5; we rely on them knowingly.
        with warnings.catch_warnings(), quiet_optuna(logging.WARNING), contextlib.ExitStack() as stack:
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Unset: the suite's thread policy (half the cores), so two workers or a demo beside a
            # search never oversubscribe the machine (rtseg_core._threads has the measurements).
            threads = resolve_threads(self.config.training.train_threads, option="--train-threads")
            stack.enter_context(torch_threads(threads))
            return self._run()

    def _run(self) -> SearchSummary:
        cfg = self.config
        space = cfg.strategy.space
        start = time.perf_counter()
        spec = DataSpec.parse(cfg.training.data)  # a bad --data fails here, not in every trial
        # A space that cannot hold the reference fails here, before the study exists.
        self._reference_params = reference_params(space)
        self._check_space_against_limits()
        try:
            self.study_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SearchError(
                f"--study {self.study_dir}: cannot create the study folder ({exc.strerror}"
                f"{': ' + str(exc.filename) if exc.filename else ''})"
            ) from None
        url = resolve_storage_url(cfg.study.storage, self.study_dir)
        shared = not url.startswith("sqlite")
        workers = cfg.workers
        storage = make_storage(url, heartbeat_interval=workers.heartbeat_interval, grace_period=workers.grace_period)
        settings = cfg.settings(url)
        reference = PRESETS[space.base]
        if not space.contains(reference):
            log.warning("the reference %r lies outside the search space; it is still enqueued as trial 0", space.base)
        study, created = open_study(
            storage,
            study_name=cfg.resolved_study_name(),
            directions=self.directions,
            metric_names=self.fields,
            settings=settings.to_dict(),
            fixed_keys=FIXED_SETTINGS,
            reference_params=self._reference_params,
            reference_name=space.base,
        )
        if created:
            self._check_fresh_dir()
        study.sampler = self._sampler(len(study.get_trials(deepcopy=False)), shared=shared)
        write_study_json(self.study_dir, settings)
        write_environment(self.study_dir, threads=cfg.profiling.threads)

        runner = TrialRunner(cfg, self.study_dir, dataset=spec.kind, steps=self.steps)
        trials_run = 0
        try:
            with _progress(cfg, self._finished(study)) as bar:
                trials_run = self._loop(study, runner, bar)
        finally:
            # Also when a bug stops the search: history.csv then shows the failed trial and its reason.
            write_history(self.study_dir, study, self.fields)
        summary = self.summary(study, trials_run=trials_run, wall_s=_elapsed(start), storage=settings.storage)
        log.debug("search %s: %s", summary.study_name, summary.verdict())
        return summary

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self, study: optuna.Study, runner: TrialRunner, bar) -> int:
        requested = self.config.study.trials
        workers = self.config.workers
        run = failures = rejections = 0
        while True:
            optuna.storages.fail_stale_trials(study)
            self._fail_unstarted(study)
            trials = study.get_trials(deepcopy=False)
            done = sum(counts_towards_target(t) for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            self._update_bar(bar, study, done)
            if done >= requested:
                return run
            budget = self.config.study.budget_epochs
            if budget is not None and epochs_trained(trials) >= budget:
                # Running trials (this study's other workers) finish on their own: no waiting here.
                return run
            self._ensure_reference(study, trials)
            if running and done + running >= requested:
                # Other workers hold the last trials: wait for them (a dead one turns FAIL after its grace period).
                time.sleep(workers.poll_interval)
                continue
            self._last_number = None
            study.optimize(runner, n_trials=1, catch=CATCH, callbacks=[self._after_trial])
            run += 1
            last = self._last_own_trial(study)
            if last is None:
                continue
            if last.state == TrialState.FAIL and not _is_surplus(last):
                failures += 1
                if failures >= workers.max_consecutive_failures:
                    raise SearchError(
                        f"{failures} trials in a row failed; the last (trial {last.number}) with: "
                        f"{last.user_attrs.get('fail_reason', 'unknown reason')}. Fix the cause, then run the same "
                        f"command again to resume (completed trials are kept in {self.study_dir})"
                    )
            elif last.state == TrialState.PRUNED and "rejected" in last.user_attrs:
                rejections += 1
                if rejections >= workers.max_consecutive_rejections:
                    raise SearchError(
                        f"{rejections} sampled architectures in a row were rejected before training; the last: "
                        f"{last.user_attrs['rejected']}. Loosen the constraints or widen the search space"
                    )
            else:
                failures = rejections = 0

    def _ensure_reference(self, study: optuna.Study, trials: list[FrozenTrial]) -> None:
        """Queue the reference again if it failed (e.g. its worker was killed): every study must contain it."""
        alive = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        if any(t.user_attrs.get(REFERENCE_ATTR) and t.state in alive for t in trials):
            return
        base = self.config.strategy.space.base
        study.enqueue_trial(dict(self._reference_params), user_attrs={REFERENCE_ATTR: base})
        log.info("the reference trial failed earlier; queued %r again", base)

    def _fail_unstarted(self, study: optuna.Study) -> None:
        """FAIL the RUNNING trials that never started their objective and are older than the grace period.

        A worker killed between Optuna's ``ask`` and its first heartbeat leaves a RUNNING trial
        without a heartbeat, which ``fail_stale_trials`` never fails; without this, every later
        worker would wait for it forever. Our objective marks a started trial with ``stage``
        first thing, while the heartbeat thread already runs.
        """
        grace = self.config.workers.grace_period or 2 * self.config.workers.heartbeat_interval
        now = datetime.now()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            started = t.datetime_start
            if "stage" in t.user_attrs or started is None or (now - started).total_seconds() <= grace:
                continue
            try:
                study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                log.warning("trial %d never started its objective (worker killed?): marked FAIL", t.number)
            except (RuntimeError, ValueError):
                pass  # another worker changed it first

    def _after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._last_number = trial.number
        write_history(self.study_dir, study, self.fields)

    def _last_own_trial(self, study: optuna.Study) -> FrozenTrial | None:
        number = self._last_number
        if number is None:
            return None
        for t in study.get_trials(deepcopy=False):
            if t.number == number:
                return t
        return None

    def _finished(self, study: optuna.Study) -> int:
        return sum(counts_towards_target(t) for t in study.get_trials(deepcopy=False))

    def _update_bar(self, bar, study: optuna.Study, done: int) -> None:
        if bar is None:
            return
        front = feasible_front(study, self.fields, self.directions)
        bar.n = min(done, bar.total)
        postfix = {"done": done, "left": max(self.config.study.trials - done, 0), "front": len(front)}
        if front:
            best = max(front, key=lambda t: t.values[0] if self.directions[0] == "maximize" else -t.values[0])
            head = f"{best.values[0]:.3f}"
            if len(self.fields) > 1:
                head += f"@{best.values[1]:.3g}{'ms' if self.fields[1] == 'latency_ms' else ''}"
            postfix["best"] = head
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    # -- set-up checks -------------------------------------------------------------------------
    def _sampler(self, existing: int, *, shared: bool) -> optuna.samplers.BaseSampler:
        strategy = self.config.strategy
        seed = sampler_seed(self.config.seed, existing, shared=shared)
        if strategy.sampler == "nsga2":
            return RejectionAwareNSGAIISampler(population_size=strategy.population_size, seed=seed)
        if strategy.sampler == "tpe":
            startup = min(10, max(self.config.study.trials // 3, 2))
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
        return optuna.samplers.RandomSampler(seed=seed)

    def _check_space_against_limits(self) -> None:
        limit = self.config.objectives.max_params
        if limit is None:
            return
        smallest = self.config.strategy.space.smallest_config()
        params = count_parameters(build_model(smallest))
        if params > limit:
            raise SearchError(
                f"--max-params {limit:,}: even the smallest architecture of the search space has {params:,} "
                f"parameters ({smallest.conv_widths + smallest.token_widths}); raise the limit or narrow the widths"
            )

    def _check_fresh_dir(self) -> None:
        trials_dir = StudyDir(self.study_dir).trials_dir
        if trials_dir.is_dir() and any(trials_dir.iterdir()):
            raise SearchError(
                f"{trials_dir}: holds trials of an earlier study, but the storage has no study named "
                f"{self.config.resolved_study_name()!r} (was study.db deleted?). Move {trials_dir} away or use a "
                "new --study folder"
            )

    # -- the summary ---------------------------------------------------------------------------
    def summary(self, study: optuna.Study, *, trials_run: int, wall_s: float, storage: str) -> SearchSummary:
        return summarize_study(
            study,
            self.fields,
            self.directions,
            study_dir=self.study_dir,
            storage=storage,
            constraints=self.config.constraints().to_dict(),
            trials_requested=self.config.study.trials,
            trials_run=trials_run,
            wall_s=wall_s,
            budget_epochs=self.config.study.budget_epochs,
        )


def summarize_study(
    study: optuna.Study,
    fields: list[str],
    directions: list[str],
    *,
    study_dir: Path,
    storage: str,
    constraints: dict,
    trials_requested: int,
    trials_run: int = 0,
    wall_s: float = 0.0,
    budget_epochs: int | None = None,
) -> SearchSummary:
    """The :class:`SearchSummary` of a study as its storage holds it now (feasibility respected)."""
    trials = study.get_trials(deepcopy=False)
    counts = {"complete": 0, "early_stopped": 0, "rejected": 0, "failed": 0, "running": 0}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["early_stopped" if t.user_attrs.get("early_stopped") else "rejected"] += 1
        elif t.state == TrialState.FAIL:
            counts["failed"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
    front = [_member(t, fields) for t in feasible_front(study, fields, directions)]
    cost_index = next((i for i, f in enumerate(fields) if f in ("latency_ms", "params", "macs")), 0)
    front.sort(key=lambda m: (m.values[fields[cost_index]], m.trial))
    ref_trial = next((t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get(REFERENCE_ATTR)), None)
    reference = _member(ref_trial, fields) if ref_trial is not None else None
    beats: list[int] = []
    if reference is not None:
        for m in front:
            if m.trial != reference.trial and all(
                _strictly_better(m.values[f], reference.values[f], d) for f, d in zip(fields, directions)
            ):
                beats.append(m.trial)
    return SearchSummary(
        study_dir=study_dir,
        study_name=study.study_name,
        storage=storage,
        objectives=tuple(zip(fields, directions)),
        constraints=constraints,
        trials_requested=trials_requested,
        trials_run=trials_run,
        counts=counts,
        front=tuple(front),
        reference=reference,
        beats_reference=tuple(beats),
        wall_s=wall_s,
        epochs_trained=epochs_trained(trials),
        budget_epochs=budget_epochs,
    )


def epochs_trained(trials: list[FrozenTrial]) -> int:
    """Epochs trained by ``trials`` in any state, as each records it (``epochs_trained``, updated
    after every epoch, so running, early-stopped and failed trials count what they trained)."""
    return sum(int(t.user_attrs.get("epochs_trained") or 0) for t in trials)


def _member(t: FrozenTrial, fields: list[str]) -> FrontMember:
    """A completed trial as the summary shows it. Its stored config must be readable: showing any
    other architecture beside this trial's numbers would be wrong, so an unreadable one is an error."""
    if "config" not in t.user_attrs:
        raise SearchError(
            f"trial {t.number} ({trial_name(t)}): completed but has no stored architecture (user attribute "
            "'config'); the study was written by something else or edited. Remove the trial or start a new --study"
        )
    try:
        config = RTSegConfig.from_dict(t.user_attrs["config"], source=f"trial {t.number}")
    except (ConfigError, TypeError, ValueError) as exc:
        raise SearchError(
            f"trial {t.number} ({trial_name(t)}): its stored architecture (user attribute 'config') cannot be "
            f"read: {exc}"
        ) from None
    values = dict(zip(fields, t.values)) if t.values is not None else {}
    return FrontMember(
        trial=t.number,
        name=trial_name(t),
        config=config,
        values=values,
        feasible=is_feasible(t.constraints),
        params=t.user_attrs.get("params"),
        latency_ms=t.user_attrs.get("latency_ms"),
        dice=t.user_attrs.get("dice"),
    )


def _strictly_better(a: float, b: float, direction: str) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return False
    return a > b if direction == "maximize" else a < b


def _is_surplus(trial: FrozenTrial) -> bool:
    return str(trial.user_attrs.get("fail_reason", "")).startswith(Surplus.__name__)


class _NoBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None


def _progress(cfg: SearchConfig, initial: int):
    trials = cfg.study.trials
    if not cfg.workers.progress:
        return _NoBar()
    from tqdm.auto import tqdm

    class _Bar:
        def __enter__(self):
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm(loggers=[logging.root, optuna.logging.get_logger("optuna")])
            self._redirect.__enter__()
            self.bar = tqdm(total=trials, initial=min(initial, trials), desc="search", unit="trial")
            return self.bar

        def __exit__(self, *exc) -> None:
            self.bar.close()
            self._redirect.__exit__(*exc)

    return _Bar()


def sampler_seed(seed: int, existing_trials: int, *, shared: bool) -> int:
    """The sampler seed of one run: ``seed`` and the study's size (and the pid for shared storage)."""
    text = f"{seed}:{existing_trials}" + (f":{os.getpid()}" if shared else "")
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


@contextlib.contextmanager
def quiet_optuna(level: int) -> Iterator[None]:
    """Optuna's own log level for the block (its per-trial INFO lines would break the progress bar)."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(level)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def _elapsed(start: float) -> float:
    return round(time.perf_counter() - start, 3)
