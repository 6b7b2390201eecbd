"""The search loop behind :func:`search_spaces.run_search` (Optuna, the trial runner and the study files)."""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from models._config import RTSegConfig
from models._model import build_model
from models._presets import PRESETS
from rtseg_core import ConfigError, SearchError
from search_spaces._files import write_environment, write_history, write_study_json
from search_spaces._search import (
    FIXED_SETTINGS,
    FrontMember,
    SearchConfig,
    SearchSummary,
    _elapsed,
    quiet_optuna,
    sampler_seed,
)
from search_spaces._space import reference_params
from search_spaces._study import REFERENCE_ATTR, make_storage, open_study, resolve_storage_url
from search_spaces._trial import CATCH, Surplus, TrialRunner, counts_towards_target, feasible_front, trial_name

log = logging.getLogger(__name__)


class SearchRunner:
    """One worker's run of a search: open the study, run trials until N have finished, summarise."""

    def __init__(self, config: SearchConfig) -> None:
        self.config = config
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
            if self.config.train_threads is not None:
                from profiling import torch_threads

                stack.enter_context(torch_threads(self.config.train_threads))
            return self._run()

    def _run(self) -> SearchSummary:
        from segmentation._data import DataSpec

        cfg = self.config
        start = time.perf_counter()
        spec = DataSpec.parse(cfg.data)  # a bad --data fails here, not in every trial
        # A space that cannot hold the reference fails here, before the study exists.
        self._reference_params = reference_params(cfg.space)
        self._check_space_against_limits()
        try:
            self.study_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SearchError(
                f"--study {self.study_dir}: cannot create the study folder ({exc.strerror}"
                f"{': ' + str(exc.filename) if exc.filename else ''})"
            ) from None
        url = resolve_storage_url(cfg.storage, self.study_dir)
        shared = not url.startswith("sqlite")
        storage = make_storage(url, heartbeat_interval=cfg.heartbeat_interval, grace_period=cfg.grace_period)
        settings = cfg.settings(url)
        reference = PRESETS[cfg.space.base]
        if not cfg.space.contains(reference):
            log.warning(
                "the reference %r lies outside the search space; it is still enqueued as trial 0", cfg.space.base
            )
        study, created = open_study(
            storage,
            study_name=cfg.resolved_study_name(),
            directions=self.directions,
            metric_names=self.fields,
            settings=settings,
            fixed_keys=FIXED_SETTINGS,
            reference_params=self._reference_params,
            reference_name=cfg.space.base,
        )
        if created:
            self._check_fresh_dir()
        study.sampler = self._sampler(len(study.get_trials(deepcopy=False)), shared=shared)
        write_study_json(self.study_dir, {**settings, "trials_requested": cfg.trials})
        write_environment(self.study_dir, threads=cfg.threads)

        runner = TrialRunner(cfg, self.study_dir, dataset=spec.kind)
        trials_run = 0
        with _progress(cfg, self._finished(study)) as bar:
            trials_run = self._loop(study, runner, bar)
        write_history(self.study_dir, study, self.fields)
        summary = self.summary(study, trials_run=trials_run, wall_s=_elapsed(start), storage=settings["storage"])
        log.debug("search %s: %s", summary.study_name, summary.verdict())
        return summary

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self, study: optuna.Study, runner: TrialRunner, bar) -> int:
        cfg = self.config
        run = failures = rejections = 0
        while True:
            optuna.storages.fail_stale_trials(study)
            self._fail_unstarted(study)
            trials = study.get_trials(deepcopy=False)
            done = sum(counts_towards_target(t) for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            self._update_bar(bar, study, done)
            if done >= cfg.trials:
                return run
            self._ensure_reference(study, trials)
            if running and done + running >= cfg.trials:
                # Other workers hold the last trials: wait for them (a dead one turns FAIL after its grace period).
                time.sleep(cfg.poll_interval)
                continue
            self._last_number = None
            study.optimize(runner, n_trials=1, catch=CATCH, callbacks=[self._after_trial])
            run += 1
            last = self._last_own_trial(study)
            if last is None:
                continue
            if last.state == TrialState.FAIL and not _is_surplus(last):
                failures += 1
                if failures >= cfg.max_consecutive_failures:
                    raise SearchError(
                        f"{failures} trials in a row failed; the last (trial {last.number}) with: "
                        f"{last.user_attrs.get('fail_reason', 'unknown reason')}. Fix the cause, then run the same "
                        f"command again to resume (completed trials are kept in {self.study_dir})"
                    )
            elif last.state == TrialState.PRUNED and "rejected" in last.user_attrs:
                rejections += 1
                if rejections >= cfg.max_consecutive_rejections:
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
        study.enqueue_trial(dict(self._reference_params), user_attrs={REFERENCE_ATTR: self.config.space.base})
        log.info("the reference trial failed earlier; queued %r again", self.config.space.base)

    def _fail_unstarted(self, study: optuna.Study) -> None:
        """FAIL the RUNNING trials that never started their objective and are older than the grace period.

        A worker killed between Optuna's ``ask`` and its first heartbeat leaves a RUNNING trial
        without a heartbeat, which ``fail_stale_trials`` never fails; without this, every later
        worker would wait for it forever. Our objective marks a started trial with ``stage``
        first thing, while the heartbeat thread already runs.
        """
        grace = self.config.grace_period or 2 * self.config.heartbeat_interval
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
        postfix = {"done": done, "left": max(self.config.trials - done, 0), "front": len(front)}
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
        cfg = self.config
        seed = sampler_seed(cfg.seed, existing, shared=shared)
        if cfg.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(population_size=cfg.population_size, seed=seed)
        if cfg.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(cfg.trials // 3, 2)))
        return optuna.samplers.RandomSampler(seed=seed)

    def _check_space_against_limits(self) -> None:
        limit = self.config.max_params
        if limit is None:
            return
        smallest = self.config.space.smallest_config()
        params = sum(p.numel() for p in build_model(smallest).parameters() if p.requires_grad)
        if params > limit:
            raise SearchError(
                f"--max-params {limit:,}: even the smallest architecture of the search space has {params:,} "
                f"parameters ({smallest.conv_widths + smallest.token_widths}); raise the limit or narrow the widths"
            )

    def _check_fresh_dir(self) -> None:
        trials_dir = self.study_dir / "trials"
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
            trials_requested=self.config.trials,
            trials_run=trials_run,
            wall_s=wall_s,
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
    )


def _member(t: FrozenTrial, fields: list[str]) -> FrontMember:
    try:
        config = RTSegConfig.from_dict(t.user_attrs["config"], source=f"trial {t.number}")
    except (KeyError, ConfigError):
        config = PRESETS["paper"]
    values = dict(zip(fields, t.values)) if t.values is not None else {}
    from search_spaces._objectives import is_feasible

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
    if not cfg.progress:
        return _NoBar()
    from tqdm.auto import tqdm

    class _Bar:
        def __enter__(self):
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm(loggers=[logging.root, optuna.logging.get_logger("optuna")])
            self._redirect.__enter__()
            self.bar = tqdm(total=cfg.trials, initial=min(initial, cfg.trials), desc="search", unit="trial")
            return self.bar

        def __exit__(self, *exc) -> None:
            self.bar.close()
            self._redirect.__exit__(*exc)

    return _Bar()
