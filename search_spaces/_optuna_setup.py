"""Optuna as the searches set it up: the sampler and its seed, its logging, and its storage errors."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna

from rtseg_core import SearchError
from search_spaces._config import SAMPLERS
from search_spaces._dashboard import RejectionAwareNSGAIISampler
from search_spaces._study import redact_url, resolve_storage_url


def sampler_seed(seed: int, existing_trials: int, *, shared: bool) -> int:
    """The sampler seed of one run: ``seed`` and the study's size (and the pid for shared storage)."""
    text = f"{seed}:{existing_trials}" + (f":{os.getpid()}" if shared else "")
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def make_sampler(name: str, *, seed: int, population_size: int, trials: int) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` (one of :data:`SAMPLERS`). NSGA-II is the rejection-aware one: rejected
    trials join their generation as infeasible members, so it stops proposing their neighbours."""
    if name == "nsga2":
        return RejectionAwareNSGAIISampler(population_size=population_size, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(trials // 3, 2)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SearchError(f"--sampler: must be one of {', '.join(SAMPLERS)}, got {name!r}")


@contextlib.contextmanager
def quiet_optuna(level: int) -> Iterator[None]:
    """Optuna's own log level for the block (its per-trial INFO lines would break the progress bar)."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(level)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


class _NoFailedTrialTraceback(logging.Filter):
    """Drops Optuna's two "Trial N failed ..." warnings (the first with the traceback). The driver
    logs a documented failure in one line and history.csv keeps its reason; anything else (a bug,
    Ctrl-C) propagates from ``optimize`` and is shown once, where it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and record.getMessage().startswith("Trial ") and
                    " failed with " in record.getMessage())  # fmt: skip


@contextlib.contextmanager
def optuna_session() -> Iterator[None]:
    """Optuna as a search runs it: warnings only, no failed-trial tracebacks, no ExperimentalWarning
    for heartbeats, metric names and ``fail_stale_trials`` (used knowingly), and none for a reference
    enqueued outside the space (the search says so once, where it enqueues it)."""
    logger = logging.getLogger("optuna.study._optimize")
    quiet = _NoFailedTrialTraceback()
    with warnings.catch_warnings(), quiet_optuna(logging.WARNING):
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message=r"Fixed parameter .* is out of range", category=UserWarning)
        logger.addFilter(quiet)
        try:
            yield
        finally:
            logger.removeFilter(quiet)


@contextlib.contextmanager
def storage_errors(storage: str | None, study_dir: Path) -> Iterator[None]:
    """A read-only, full or vanished database as one :class:`SearchError` naming it, not a SQLAlchemy traceback."""
    import sqlalchemy.exc

    try:
        yield
    except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError) as exc:
        cause = exc.__cause__ or exc
        detail = str(getattr(cause, "orig", None) or cause).splitlines()[0][:200]
        url = redact_url(resolve_storage_url(storage, study_dir))
        raise SearchError(
            f"--storage {url}: the study database refused a write ({detail}); is it read-only, on a full disk, "
            "or removed while the search ran?"
        ) from None
