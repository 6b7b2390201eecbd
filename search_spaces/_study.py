"""Opening the Optuna study of a search: storage URLs, heartbeats, creation races and settings checks.

Storage: ``STUDY_DIR/study.db`` (SQLite) unless a URL is given. SQLite serves one process; several
workers (on several machines) share one study through PostgreSQL or MySQL. ``postgresql://`` and
``postgres://`` URLs are rewritten to SQLAlchemy's psycopg 3 driver (``postgresql+psycopg://``),
the one installed. Every RDB storage gets a heartbeat: a worker that dies (SIGKILL, power loss)
stops beating, and the next worker that starts a trial marks its RUNNING trial FAIL
(``optuna.storages.fail_stale_trials``).

The search settings that define what a trial's numbers mean (objectives, constraints, data,
sizes, proxy training, target, space...) are stored with the study (user attribute
``rtseg_settings``). A run that opens an existing study with different settings is refused with
the fields that differ, instead of silently mixing incomparable trials.

Also here: how the suite reads a stored trial (its name, whether it counts towards the requested
number, whether it is feasible) and the feasible Pareto front of a study.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rtseg_core import SearchError, SearchOptionError, SettingsMismatchError, is_feasible, pareto_indices

log = logging.getLogger(__name__)

SETTINGS_ATTR = "rtseg_settings"
REFERENCE_ATTR = "reference"  # user attribute of the enqueued paper trial
DEFAULT_DB = "study.db"


def resolve_storage_url(storage: str | None, study_dir: str | Path) -> str:
    """The SQLAlchemy URL to open: the given one (``postgresql://`` -> psycopg 3 driver) or the study's SQLite file."""
    if not storage:
        path = Path(study_dir).resolve() / DEFAULT_DB
        return f"sqlite:///{path}"
    url = storage.strip()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("postgresql+psycopg2://"):
        raise SearchOptionError(
            f"--storage {redact_url(url)}: the psycopg2 driver is not installed; use postgresql:// "
            "(psycopg 3 is used) or postgresql+psycopg://"
        )
    if "://" not in url:
        raise SearchOptionError(
            f"--storage {url!r}: not a database URL; give e.g. sqlite:///path/study.db or "
            "postgresql://user@host:5432/dbname (or leave it out for STUDY_DIR/study.db)"
        )
    _refuse_transient(url)
    return url


def _refuse_transient(url: str) -> None:
    """A study must outlive the process: an in-memory SQLite database vanishes at exit, unresumable."""
    if not url.startswith("sqlite"):
        return
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError for a malformed URL
        raise SearchOptionError(f"--storage {url!r}: not a valid database URL ({exc})") from None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:") or parsed.query.get("mode") == "memory":
        raise SearchOptionError(
            f"--storage {url!r}: an in-memory SQLite database is lost when the search ends and cannot be resumed; "
            "give a file (sqlite:///path/study.db) or leave --storage out for STUDY_DIR/study.db"
        )


def redact_url(url: str) -> str:
    """The URL without its password, for logs and ``study.json``."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable: show only the scheme
        return url.split("://", 1)[0] + "://..."


def make_storage(
    url: str,
    *,
    heartbeat_interval: int,
    grace_period: int | None,
    stale_trial_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
    retries: int = 5,
) -> optuna.storages.RDBStorage:
    """An RDB storage with a heartbeat. Table creation races between workers are retried.

    Raises :class:`SearchError` naming the (password-free) URL when the database cannot be reached.
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Wait for a lock instead of failing at once (the heartbeat thread writes while a trial runs).
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    last: Exception | None = None
    for attempt in range(retries):
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=stale_trial_callback,
            )
        except ImportError as exc:
            raise SearchError(f"--storage {redact_url(url)}: the database driver is missing ({exc})") from None
        except Exception as exc:  # sqlalchemy OperationalError/ProgrammingError/IntegrityError...
            last = exc
            # Two workers creating the tables at the same moment collide; the second try finds them.
            time.sleep(0.2 * (attempt + 1))
    raise SearchError(
        f"--storage {redact_url(url)}: cannot open the database "
        f"({type(last).__name__}: {str(last).splitlines()[0][:300]}); "
        "check that the server runs, the database exists and the user may connect"
    )


def open_study(
    storage: optuna.storages.BaseStorage,
    *,
    study_name: str,
    directions: list[str],
    metric_names: list[str],
    settings: Mapping[str, Any],
    fixed_keys: tuple[str, ...],
    reference_params: Mapping[str, Any] | None,
    reference_name: str = "paper",
    sampler: optuna.samplers.BaseSampler | None = None,
) -> tuple[optuna.Study, bool]:
    """Create the study, or load it if it exists; returns ``(study, created)``.

    On creation: directions, metric names (so optuna-dashboard labels the axes), the settings,
    and the enqueued reference trial (``reference_params`` with user attribute
    ``reference=reference_name``). Only the creating process enqueues, so two workers starting together
    do not queue the reference twice. On load: directions and the ``fixed_keys`` of the settings
    must match the stored ones, else :class:`SearchError` lists what differs and how to proceed.
    """
    created = False
    try:
        study = optuna.create_study(
            storage=storage, study_name=study_name, directions=directions, sampler=sampler, load_if_exists=False
        )
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    if created:
        study.set_metric_names(metric_names)
        study.set_user_attr(SETTINGS_ATTR, dict(settings))
        if reference_params is not None:
            study.enqueue_trial(dict(reference_params), user_attrs={REFERENCE_ATTR: reference_name})
        log.info("created study %r", study_name)
        return study, True

    stored_dirs = [d.name.lower() for d in study.directions]
    if stored_dirs != [d.lower() for d in directions]:
        raise SearchError(
            f"study {study_name!r} exists with directions {stored_dirs}, this run asks for {directions}; "
            "use the same --objectives or a new --study/--study-name"
        )
    stored = study.user_attrs.get(SETTINGS_ATTR)
    if stored is None:
        # Another worker has created the study and is writing its attributes right now.
        for _ in range(50):
            time.sleep(0.1)
            stored = study.user_attrs.get(SETTINGS_ATTR)
            if stored is not None:
                break
    if stored is None:
        raise SearchError(
            f"study {study_name!r} exists but was not created by rtseg-nas (no {SETTINGS_ATTR!r} attribute); "
            "choose another --study-name"
        )
    differ = [k for k in fixed_keys if _normal(stored.get(k)) != _normal(settings.get(k))]
    if differ:
        details = "; ".join(f"{k}: study has {stored.get(k)!r}, this run {settings.get(k)!r}" for k in differ)
        raise SettingsMismatchError(
            f"study {study_name!r} was started with other settings ({details}). Trials run with different "
            "settings are not comparable: repeat the original options, or start a new --study"
        )
    log.info("resuming study %r (%d trials so far)", study_name, len(study.get_trials(deepcopy=False)))
    return study, False


def counts_towards_target(trial: FrozenTrial) -> bool:
    """COMPLETE trials and early-stopped ones (trained and judged) make up the requested N."""
    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.PRUNED and bool(trial.user_attrs.get("early_stopped"))
    )


def trial_feasible(trial: FrozenTrial) -> bool:
    """Feasible = produced a result (COMPLETE or early-stopped) and meets every constraint."""
    return counts_towards_target(trial) and is_feasible(trial.constraints)


def trial_name(trial: FrozenTrial | optuna.trial.Trial) -> str:
    ref = trial.user_attrs.get(REFERENCE_ATTR)
    return str(ref) if ref else f"trial-{trial.number}"


def feasible_front(study: optuna.Study, fields: list[str], directions: list[str]) -> list[FrozenTrial]:
    """The feasible Pareto front of the COMPLETE trials (Optuna's ``best_trials`` ignores feasibility)."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if is_feasible(t.constraints) and t.values is not None and len(t.values) == len(fields)
    ]
    keep = pareto_indices([t.values for t in done], directions)
    return [done[i] for i in keep]


def _normal(value: Any) -> Any:
    # JSON storage turns tuples into lists; compare structure, not container types.
    if isinstance(value, tuple | list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value
