"""Multi-objective architecture search over the RTSeg-Net family: ``run_search(SearchConfig) -> SearchSummary``.

What one call does (the loop is :class:`search_spaces._driver.StudyDriver`'s, the trial
:class:`search_spaces._trial.TrialRunner`'s):

1. Checks what would make every trial fail (data, size, the space's smallest architecture,
   ``--max-params``) before anything is written.
2. Opens (or creates) the Optuna study in ``config.study.storage`` (default ``STUDY_DIR/study.db``)
   with a heartbeat; a new study gets the ``paper`` architecture enqueued as its first trial, so
   every study contains the reference point. Trials left RUNNING by a killed worker become FAIL.
3. Runs trials until ``config.study.trials`` of them have finished (COMPLETE or early-stopped),
   counting those of earlier runs and of other workers: running the same command again resumes,
   and a larger ``--trials`` runs only the missing ones. Rejected and failed trials do not count;
   ``max_consecutive_failures`` failures in a row stop the search. With an epoch budget
   (``config.study.budget_epochs``; a resumed study keeps its stored one unless the run gives
   another) the search also stops proposing trials once the epochs trained by all the study's
   trials (``epochs_trained``, read from the storage, so earlier runs and other workers count;
   early-stopped trials count the epochs they trained) reach the budget; trials already running
   finish, so the budget is exceeded by at most the epochs of the trials in flight. ``trials`` then
   is an upper bound.
4. Writes ``study.json``, ``environment.json`` and, after every trial, ``history.csv``.
5. Returns the feasible Pareto front and whether any member beats the reference on every objective.

Reproducibility: with one worker and SQLite, ``seed`` fixes the sampler, the data split and
the training of every trial (measured latencies still vary from run to run); see
:func:`search_spaces._optuna_setup.sampler_seed` for resumed and shared studies.
"""

from __future__ import annotations

import logging

from models import PRESETS
from rtseg_core import MULTI_TRIAL, resolve_threads, torch_threads
from search_spaces._config import SearchConfig, fixed_settings
from search_spaces._driver import StudyDriver
from search_spaces._results import SearchSummary, summarize_study
from search_spaces._space import reference_params
from search_spaces._trial import TrialRunner, TrialSteps
from segmentation import DataSpec

log = logging.getLogger(__name__)


def run_search(config: SearchConfig, *, steps: TrialSteps | None = None) -> SearchSummary:
    """Run (or resume) the search described by ``config``; see the module docstring.

    ``steps`` replaces the trainer, evaluator or profiler of every trial (tests wrap them).
    Raises :class:`SearchError` when the study cannot be opened or continued (storage, changed
    settings, every architecture over ``--max-params``, too many failures in a row), and
    :class:`ConfigError` for bad data or settings, all before the first trial where they can be
    known then. An exception that is not a documented trial failure (see
    :mod:`search_spaces._trial`) propagates unchanged; Ctrl-C ends it with a ``KeyboardInterrupt``
    whose message says how to resume.
    """
    cfg = config
    space = cfg.strategy.space
    study_dir = cfg.resolved_study_dir()
    spec = DataSpec.parse(cfg.training.data)  # a bad --data fails here, not in every trial
    # A space that cannot hold the reference fails here, before the study exists.
    reference = (space.base, reference_params(space))
    if not space.contains(PRESETS[space.base]):
        log.warning("the reference %r lies outside the search space; it is still enqueued as trial 0", space.base)
    objectives = cfg.parsed_objectives()
    driver = StudyDriver(
        study_dir,
        study_name=cfg.resolved_study_name(),
        study=cfg.study,
        workers=cfg.workers,
        sampler=cfg.strategy.sampler,
        population_size=cfg.strategy.population_size,
        seed=cfg.seed,
        fields=[o.field for o in objectives],
        directions=[o.direction for o in objectives],
        threads=cfg.profiling.threads,
    )
    runner = TrialRunner(cfg, study_dir, dataset=spec.kind, steps=steps)
    # Unset: the suite's thread policy (half the cores), so two workers or a demo beside a
    # search never oversubscribe the machine (rtseg_core._threads has the measurements).
    threads = resolve_threads(cfg.training.train_threads, option="--train-threads")
    with torch_threads(threads):
        result = driver.run(runner, settings=cfg.settings, fixed_keys=fixed_settings(MULTI_TRIAL), reference=reference)
    summary = summarize_study(
        result.study,
        driver.fields,
        driver.directions,
        study_dir=study_dir,
        storage=result.storage,
        constraints=cfg.constraints().to_dict(),
        trials_requested=cfg.study.trials,
        trials_run=result.trials_run,
        wall_s=result.wall_s,
        budget_epochs=result.budget_epochs,
    )
    log.debug("search %s: %s", summary.study_name, summary.verdict())
    return summary
