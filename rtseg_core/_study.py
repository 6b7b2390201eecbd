"""The study folder: its layout, and the one reader and writer of each file in it.

The search, compression, validation and the reports all work in one folder; this module is the
only place that knows its paths and the shape of its study-level files::

    STUDY_DIR/study.json                 the search settings, a StudySettings (objectives as
                                         [[field, direction], ...], constraints, target, data, sizes,
                                         the strategy's part, space, ...)
    STUDY_DIR/study.db                   the Optuna study (SQLite), unless the search used --storage
    STUDY_DIR/history.csv                one row per trial (the search writes it, reports read it)
    STUDY_DIR/environment.json           the host the search ran on
    STUDY_DIR/reference.json             optional: a fully trained reference model (the demo writes it)
    STUDY_DIR/remeasured.json            optional: a predict:TABLE search's front, PREDICTED beside MEASURED
                                         (`latency-table remeasure` writes it, the report shows it)
    STUDY_DIR/trials/<n>/                one search trial: config.json, measurement.json, checkpoint.pt,
                                         metrics.json, validation.json, candidate.json
    STUDY_DIR/compressed/<name>/         one compressed variant: model files and candidate.json
    STUDY_DIR/validated/<name>/          one candidate re-trained in full (the validate verb): trained.json
                                         (an architecture) or reapplied.json (a compressed variant),
                                         candidate.json, the model files
    STUDY_DIR/validated/seed-<s>/<name>/ the same for another training seed s (validate --seeds; the first
                                         seed stays in validated/<name>/); beside, not inside, <name>/
                                         because a re-applied variant's folder is replaced as a whole
    STUDY_DIR/validated/latency.json     the validation's one latency run
    STUDY_DIR/validated/summary.json     the validation's result (budget, proxy Dice, rank agreement)
    STUDY_DIR/report/                    the report's plots, tables and HTML

A trial's ``metrics.json`` and ``validation.json`` (and a supernet's ``supernet.json``) are the files
of a training, read and written by :mod:`rtseg_core._training_files`.

Every write is atomic; every read error is a :class:`ConfigError` naming the file (and the field:
the study-level files are read into typed records, :mod:`rtseg_core._settings` and
:mod:`rtseg_core._validated`, whose readers check types and bounds).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtseg_core._candidate import CandidateRecord, candidate_from_dict
from rtseg_core._errors import ConfigError
from rtseg_core._io import atomic_write_json, read_json, read_json_object
from rtseg_core._objectives import default_objective_pairs
from rtseg_core._settings import StudySettings
from rtseg_core._validated import ReappliedResult, ValidatedLatency, ValidatedResult, ValidatedSummary

log = logging.getLogger(__name__)

STUDY_JSON = "study.json"
STUDY_DB = "study.db"
HISTORY_CSV = "history.csv"
ENVIRONMENT_JSON = "environment.json"
REFERENCE_JSON = "reference.json"
REMEASURED_JSON = "remeasured.json"
PREDICTOR_JSON = "predictor.json"
PREDICTOR_SAMPLES = "predictor_samples.jsonl"
TRIALS = "trials"
COMPRESSED = "compressed"
VALIDATED = "validated"
REPORT = "report"
# Files inside a trial / variant folder.
CANDIDATE_JSON = "candidate.json"
CONFIG_JSON = "config.json"
MEASUREMENT_JSON = "measurement.json"
CHECKPOINT = "checkpoint.pt"
# Files of the validation stage: per candidate, and for the stage as a whole (under validated/).
TRAINED_JSON = "trained.json"
REAPPLIED_JSON = "reapplied.json"
LATENCY_JSON = "latency.json"
SUMMARY_JSON = "summary.json"
SEED_PREFIX = "seed-"  # validated/seed-<s>/: the runs of training seed s other than validate's first
_SEED_FOLDER = re.compile(r"seed-[0-9]+")

# The numbers every row of remeasured.json has (milliseconds, median, batch 1).
REMEASURED_NUMBERS = ("predicted_ms", "measured_ms")


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
    def predictor_json(self) -> Path:
        """The one-shot search's accuracy predictor: samples, split, model choice, held-out agreement."""
        return self.root / PREDICTOR_JSON

    @property
    def predictor_samples(self) -> Path:
        """The subnets the accuracy predictor learns from, one JSON line each (a resumed run keeps them)."""
        return self.root / PREDICTOR_SAMPLES

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

    def validated(self, name: str, seed: int | None = None) -> Path:
        """``validated/<name>/`` (``seed`` None: validate's first seed), or ``validated/seed-<seed>/<name>/``."""
        if _SEED_FOLDER.fullmatch(name):
            raise ConfigError(f"{name!r}: not usable as a candidate name under {VALIDATED}/ (kept for seed folders)")
        folder = self.validated_dir if seed is None else self.validated_dir / f"{SEED_PREFIX}{int(seed)}"
        return folder / _plain_name(name, VALIDATED)

    # What a search writes at the top of the folder (the rest is the other verbs'): the names
    # rtseg_core.check_output_dir(..., writes=...) keeps clear of the run's inputs.
    SEARCH_WRITES = (STUDY_JSON, STUDY_DB, HISTORY_CSV, ENVIRONMENT_JSON, TRIALS, PREDICTOR_JSON, PREDICTOR_SAMPLES)

    def has_settings(self) -> bool:
        """Whether the folder holds a search's ``study.json`` (a JSON object naming its objectives):
        a study written before output manifests, which a search may resume."""
        try:
            data = read_json(self.study_json)
        except ConfigError:
            return False
        return isinstance(data, dict) and "objectives" in data

    def trained_json(self, name: str, seed: int | None = None) -> Path:
        """``trained.json`` of ``validated(name, seed)``: an architecture's full-budget :class:`ValidatedResult`."""
        return self.validated(name, seed) / TRAINED_JSON

    def reapplied_json(self, name: str, seed: int | None = None) -> Path:
        """``reapplied.json`` of ``validated(name, seed)``: a re-applied variant's :class:`ReappliedResult`."""
        return self.validated(name, seed) / REAPPLIED_JSON

    @property
    def validated_latency_json(self) -> Path:
        return self.validated_dir / LATENCY_JSON

    @property
    def validated_summary_json(self) -> Path:
        return self.validated_dir / SUMMARY_JSON

    # -- study-level files -----------------------------------------------------------------------
    def read_settings(self) -> StudySettings | None:
        """``study.json`` as a :class:`StudySettings`; None, with a warning, when the study has none.

        A file that is not a search's settings (a wrong type, a missing field, a value out of
        bounds, an unknown objective) is a :class:`ConfigError` naming the file and the field.
        Defaults taken for a field an older version did not write are logged and kept in
        :attr:`StudySettings.assumed`.
        """
        path = self.study_json
        if not path.exists():
            log.warning(
                "%s: no %s; using the default objectives %s and no constraints",
                self.root,
                STUDY_JSON,
                default_objective_pairs(),
            )
            return None
        settings = StudySettings.from_dict(read_json(path), source=str(path))
        for note in settings.assumed:
            log.warning("%s: written by an older version; assumed %s", path, note)
        return settings

    def write_settings(self, settings: StudySettings) -> Path:
        """``study.json`` (the one writer; both searches call it)."""
        if not isinstance(settings, StudySettings):
            raise TypeError(f"write_settings takes a StudySettings, got {type(settings).__name__}")
        return atomic_write_json(self.study_json, settings.to_dict())

    def read_environment(self) -> dict[str, Any]:
        """``environment.json`` as a dict; ``{}`` when the study has none."""
        return read_json_object(self.environment_json, "describing the host") if self.environment_json.exists() else {}

    def write_environment(self, environment: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.environment_json, dict(environment))

    def read_reference(self) -> dict[str, Any]:
        """``reference.json`` (a fully trained reference model, e.g. from the demo), or ``{}``.

        It is shown beside the search's candidates, never mixed into their front: its accuracy comes
        from full training on the test split, theirs from proxy training on the validation split.
        """
        path = self.reference_json
        return read_json_object(path, "describing the reference model") if path.is_file() else {}

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
        data = read_json_object(path, "of remeasured latencies")
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

    # -- the validation stage's files ------------------------------------------------------------
    def read_trained(self, name: str, seed: int | None = None) -> ValidatedResult | None:
        """``trained.json`` of ``validated(name, seed)``, or None when that training has not finished."""
        path = self.trained_json(name, seed)
        return ValidatedResult.from_dict(read_json(path), source=str(path)) if path.is_file() else None

    def read_reapplied(self, name: str, seed: int | None = None) -> ReappliedResult | None:
        """``reapplied.json`` of ``validated(name, seed)``, or None when that variant has not been re-applied."""
        path = self.reapplied_json(name, seed)
        return ReappliedResult.from_dict(read_json(path), source=str(path)) if path.is_file() else None

    def read_validated_latency(self) -> ValidatedLatency | None:
        path = self.validated_latency_json
        return ValidatedLatency.from_dict(read_json(path), source=str(path)) if path.is_file() else None

    def write_validated_latency(self, latency: ValidatedLatency) -> Path:
        return atomic_write_json(self.validated_latency_json, latency.to_dict())

    def read_validated_summary(self) -> ValidatedSummary | None:
        """``validated/summary.json`` (the stage's result), or None when nothing was validated."""
        path = self.validated_summary_json
        return ValidatedSummary.from_dict(read_json(path), source=str(path)) if path.is_file() else None

    def write_validated_summary(self, summary: ValidatedSummary) -> Path:
        return atomic_write_json(self.validated_summary_json, summary.to_dict())

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
    """One ``candidate.json``; errors name the file and the field (:func:`rtseg_core.candidate_from_dict`)."""
    path = Path(path)
    return candidate_from_dict(read_json(path), str(path))


def write_candidate(folder: str | os.PathLike, record: CandidateRecord) -> Path:
    """``folder/candidate.json`` (atomic)."""
    return atomic_write_json(Path(folder) / CANDIDATE_JSON, record.to_dict())


def write_trained(folder: str | os.PathLike, result: ValidatedResult) -> Path:
    """``folder/trained.json`` (atomic; ``folder`` is ``StudyDir.validated(name)``)."""
    return atomic_write_json(Path(folder) / TRAINED_JSON, result.to_dict())


def write_reapplied(folder: str | os.PathLike, result: ReappliedResult) -> Path:
    """``folder/reapplied.json`` (atomic; ``folder``: ``StudyDir.validated(name)`` or the staged folder of it)."""
    return atomic_write_json(Path(folder) / REAPPLIED_JSON, result.to_dict())


def study_objectives(settings: StudySettings | None) -> tuple[tuple[str, str], ...]:
    """The objectives of a study as ``((field, direction), ...)``; the default objectives without ``study.json``."""
    return default_objective_pairs() if settings is None else settings.objectives


def _plain_name(name: str, folder: str) -> str:
    # A candidate name becomes a folder name: it must not climb out of the study.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ConfigError(f"{name!r}: not usable as a folder name under {folder}/")
    return name
