"""The study folder: its layout, and the one reader and writer of each file in it.

The search, compression, validation and the reports all work in one folder; this module is the
only place that knows its paths and the shape of its study-level files::

    STUDY_DIR/study.json                 the search settings (objectives as [[field, direction], ...],
                                         constraints, target, data, sizes, proxy training, space, ...)
    STUDY_DIR/study.db                   the Optuna study (SQLite), unless the search used --storage
    STUDY_DIR/history.csv                one row per trial (the search writes it, reports read it)
    STUDY_DIR/environment.json           the host the search ran on
    STUDY_DIR/reference.json             optional: a fully trained reference model (the demo writes it)
    STUDY_DIR/remeasured.json            optional: a predict:TABLE search's front, PREDICTED beside MEASURED
                                         (`latency-table remeasure` writes it, the report shows it)
    STUDY_DIR/trials/<n>/                one search trial: config.json, measurement.json, checkpoint.pt,
                                         metrics.json, validation.json, candidate.json
    STUDY_DIR/compressed/<name>/         one compressed variant: model files and candidate.json
    STUDY_DIR/validated/<name>/          one candidate re-trained in full (the validate verb)
    STUDY_DIR/report/                    the report's plots, tables and HTML

``metrics.json`` has one schema wherever it is written (a trial folder, ``train --out``): the
trainer's history, see :func:`write_training_metrics`. A trial's validation metrics go to
``validation.json`` (:func:`write_validation`), never into ``metrics.json``.

Every write is atomic; every read error is a :class:`ConfigError` naming the file.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtseg_core._candidate import CandidateRecord
from rtseg_core._errors import ConfigError
from rtseg_core._io import atomic_write_json, read_json
from rtseg_core._objectives import check_objectives, default_objective_pairs

log = logging.getLogger(__name__)

STUDY_JSON = "study.json"
STUDY_DB = "study.db"
HISTORY_CSV = "history.csv"
ENVIRONMENT_JSON = "environment.json"
REFERENCE_JSON = "reference.json"
REMEASURED_JSON = "remeasured.json"
TRIALS = "trials"
COMPRESSED = "compressed"
VALIDATED = "validated"
REPORT = "report"
# Files inside a trial / variant folder.
CANDIDATE_JSON = "candidate.json"
CONFIG_JSON = "config.json"
MEASUREMENT_JSON = "measurement.json"
METRICS_JSON = "metrics.json"
VALIDATION_JSON = "validation.json"
CHECKPOINT = "checkpoint.pt"

# The numbers every row of remeasured.json has (milliseconds, median, batch 1).
REMEASURED_NUMBERS = ("predicted_ms", "measured_ms")

# The keys of metrics.json (written by segmentation.train): the TrainConfig as a dict, one entry per
# epoch (epoch, loss, val_dice, val_dice_ps, val_dice_fh, lr, seconds, images_per_s), the wall time,
# the last validation Dice, whether an on_epoch_end callback stopped training, and the device.
TRAINING_METRICS_KEYS = ("train", "epochs", "wall_s", "val_dice", "stopped_early", "device")


@dataclass(frozen=True)
class StudyDir:
    """A study folder's paths and files. ``StudyDir(path)`` does not touch the disk; :meth:`existing` checks."""

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    @classmethod
    def existing(cls, root: str | os.PathLike) -> StudyDir:
        """The study at ``root``, which must be a folder (else :class:`ConfigError` naming it)."""
        path = Path(root)
        if not path.is_dir():
            raise ConfigError(
                f"{path}: study directory not found (give the folder the search wrote, the one with {STUDY_JSON})"
            )
        return cls(path)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def study_json(self) -> Path:
        return self.root / STUDY_JSON

    @property
    def db(self) -> Path:
        return self.root / STUDY_DB

    @property
    def history_csv(self) -> Path:
        return self.root / HISTORY_CSV

    @property
    def environment_json(self) -> Path:
        return self.root / ENVIRONMENT_JSON

    @property
    def reference_json(self) -> Path:
        return self.root / REFERENCE_JSON

    @property
    def remeasured_json(self) -> Path:
        return self.root / REMEASURED_JSON

    @property
    def trials_dir(self) -> Path:
        return self.root / TRIALS

    @property
    def compressed_dir(self) -> Path:
        return self.root / COMPRESSED

    @property
    def validated_dir(self) -> Path:
        return self.root / VALIDATED

    @property
    def report_dir(self) -> Path:
        return self.root / REPORT

    def trial_dir(self, number: int) -> Path:
        return self.trials_dir / str(int(number))

    def compressed(self, name: str) -> Path:
        return self.compressed_dir / _plain_name(name, COMPRESSED)

    def validated(self, name: str) -> Path:
        return self.validated_dir / _plain_name(name, VALIDATED)

    # What a search writes at the top of the folder (the rest is the other verbs'): the names
    # rtseg_core.check_output_dir(..., writes=...) keeps clear of the run's inputs.
    SEARCH_WRITES = (STUDY_JSON, STUDY_DB, HISTORY_CSV, ENVIRONMENT_JSON, TRIALS)

    def has_settings(self) -> bool:
        """Whether the folder holds a search's ``study.json`` (a JSON object naming its objectives):
        a study written before output manifests, which a search may resume."""
        try:
            data = read_json(self.study_json)
        except ConfigError:
            return False
        return isinstance(data, dict) and "objectives" in data

    # -- study-level files -----------------------------------------------------------------------
    def read_settings(self) -> dict[str, Any]:
        """``study.json`` as a dict; ``{}`` with a warning when the study has none (default objectives, no limits)."""
        path = self.study_json
        if not path.exists():
            log.warning(
                "%s: no %s; using the default objectives %s and no constraints",
                self.root,
                STUDY_JSON,
                default_objective_pairs(),
            )
            return {}
        return _read_object(path, "of search settings")

    def write_settings(self, settings: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.study_json, dict(settings))

    def read_environment(self) -> dict[str, Any]:
        """``environment.json`` as a dict; ``{}`` when the study has none."""
        return _read_object(self.environment_json, "describing the host") if self.environment_json.exists() else {}

    def write_environment(self, environment: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.environment_json, dict(environment))

    def read_reference(self) -> dict[str, Any]:
        """``reference.json`` (a fully trained reference model, e.g. from the demo), or ``{}``.

        It is shown beside the search's candidates, never mixed into their front: its accuracy comes
        from full training on the test split, theirs from proxy training on the validation split.
        """
        path = self.reference_json
        return _read_object(path, "describing the reference model") if path.is_file() else {}

    def write_reference(self, reference: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.reference_json, dict(reference))

    def read_remeasured(self) -> dict[str, Any] | None:
        """``remeasured.json`` (a predict:TABLE search's front timed for real), or None when absent.

        Its ``rows`` each hold a candidate's ``name``, ``predicted_ms`` and ``measured_ms`` (numbers;
        ``error_percent`` = 100 (predicted - measured) / measured) and the conditions of both; a file
        without them is a :class:`ConfigError` naming the row and the field.
        """
        path = self.remeasured_json
        if not path.exists():
            return None
        data = _read_object(path, "of remeasured latencies")
        rows = data.get("rows")
        if not isinstance(rows, list):
            raise ConfigError(f"{path}: 'rows' must be a list of remeasured candidates (latency-table remeasure)")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ConfigError(f"{path}: rows[{i}] must be an object, got {type(row).__name__}")
            if not isinstance(row.get("name"), str) or not row["name"]:
                raise ConfigError(f"{path}: rows[{i}]: 'name' must be the candidate's name")
            for key in REMEASURED_NUMBERS:
                value = row.get(key)
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                    or value <= 0
                ):
                    raise ConfigError(
                        f"{path}: rows[{i}] ({row['name']}): {key!r} must be a positive number of ms, got {value!r}"
                    )
        return data

    def write_remeasured(self, remeasured: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.remeasured_json, dict(remeasured))

    # -- candidates ------------------------------------------------------------------------------
    def candidate_paths(self, sources: Sequence[str] = (TRIALS, COMPRESSED)) -> list[Path]:
        """Every ``candidate.json`` under the given folders (``trials``, ``compressed``, ``validated``), sorted."""
        unknown = [s for s in sources if s not in (TRIALS, COMPRESSED, VALIDATED)]
        if unknown:
            raise ValueError(f"unknown candidate folder(s) {unknown}; use {TRIALS}, {COMPRESSED}, {VALIDATED}")
        out: list[Path] = []
        for source in sources:
            out += sorted((self.root / source).glob(f"*/{CANDIDATE_JSON}"))
        return out

    def read_candidates(self, sources: Sequence[str] = (TRIALS, COMPRESSED)) -> list[tuple[CandidateRecord, Path]]:
        """``(record, folder)`` of every candidate under ``sources``.

        Raises :class:`ConfigError` naming the file when one is not a CandidateRecord, or when two
        files use the same candidate name (compressed variants refer to their parent by name).
        """
        out: list[tuple[CandidateRecord, Path]] = []
        seen: dict[str, Path] = {}
        for path in self.candidate_paths(sources):
            record = read_candidate(path)
            if record.name in seen:
                raise ConfigError(
                    f"{path}: candidate name {record.name!r} is already used by {seen[record.name]}; names must be "
                    "unique because compressed variants refer to their parent by name (rename one of them)"
                )
            seen[record.name] = path
            out.append((record, path.parent))
        return out


def read_candidate(path: str | os.PathLike) -> CandidateRecord:
    """One ``candidate.json``; errors name the file and what is wrong with it."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a JSON object written by CandidateRecord.to_dict(), got {type(data).__name__}"
        )
    try:
        return CandidateRecord.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except TypeError as exc:  # a required field is missing
        raise ConfigError(
            f"{path}: not a complete CandidateRecord ({exc}); rewrite it with CandidateRecord.to_dict()"
        ) from None


def write_candidate(folder: str | os.PathLike, record: CandidateRecord) -> Path:
    """``folder/candidate.json`` (atomic)."""
    return atomic_write_json(Path(folder) / CANDIDATE_JSON, record.to_dict())


def study_objectives(settings: Mapping[str, Any], *, source: str = STUDY_JSON) -> tuple[tuple[str, str], ...]:
    """The ``objectives`` of a study as ``((field, direction), ...)``; the default objectives if absent."""
    raw = settings.get("objectives")
    if raw is None:
        return default_objective_pairs()
    if isinstance(raw, dict):  # {"dice": "maximize", ...} is an easy slip; accept it
        raw = list(raw.items())
    try:
        return check_objectives(raw)
    except ConfigError as exc:
        raise ConfigError(f"{source}: 'objectives': {exc}") from None


# -- metrics.json and validation.json ------------------------------------------------------------------
def write_training_metrics(
    folder: str | os.PathLike,
    *,
    train: Mapping[str, Any],
    epochs: Iterable[Mapping[str, Any]],
    wall_s: float,
    val_dice: float | None,
    stopped_early: bool,
    device: str,
) -> Path:
    """``folder/metrics.json``: the one schema of that file (:data:`TRAINING_METRICS_KEYS`)."""
    return atomic_write_json(
        Path(folder) / METRICS_JSON,
        {"train": dict(train), "epochs": [dict(e) for e in epochs], "wall_s": wall_s, "val_dice": val_dice,
         "stopped_early": stopped_early, "device": device},
    )  # fmt: skip


def read_training_metrics(folder: str | os.PathLike) -> dict[str, Any]:
    """``folder/metrics.json``; a file without the trainer's keys is a :class:`ConfigError` naming it."""
    path = Path(folder) / METRICS_JSON
    data = _read_object(path, "of training metrics")
    missing = [k for k in TRAINING_METRICS_KEYS if k not in data]
    if missing:
        raise ConfigError(f"{path}: not a training-metrics file (missing {missing}); it is written by train")
    return data


def write_validation(folder: str | os.PathLike, *, split: str, size: int, summary: Any) -> Path:
    """``folder/validation.json``: the evaluation of a trial's checkpoint (``split``, ``size``, ``summary``)."""
    return atomic_write_json(Path(folder) / VALIDATION_JSON, {"split": split, "size": size, "summary": summary})


def read_validation(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / VALIDATION_JSON
    data = _read_object(path, "of validation metrics")
    missing = [k for k in ("split", "size", "summary") if k not in data]
    if missing:
        raise ConfigError(f"{path}: not a validation file (missing {missing})")
    return data


def _read_object(path: Path, what: str) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object {what}, got {type(data).__name__}")
    return data


def _plain_name(name: str, folder: str) -> str:
    # A candidate name becomes a folder name: it must not climb out of the study.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ConfigError(f"{name!r}: not usable as a folder name under {folder}/")
    return name
