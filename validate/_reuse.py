"""Reusing another study's finished full-budget trainings (``validate --reuse-from STUDY``).

Comparing search strategies validates many studies with one recipe; each of them trains ``paper``
(and sometimes the same architecture) with the same seeds on the same data. Before training a
(candidate, seed), validate looks in the other studies' validated folders of that seed for a
finished ``trained.json`` of the same architecture (equal :class:`models.RTSegConfig`, trained at
the same size) whose budget and training seed pass :func:`validate._config.check_finished`, the
check a resumed run applies to its own results, and copies its checkpoint and files here. The
other study is only read. The copy's ``trained.json`` carries this study's candidate (its trial
and proxy numbers) and ``reused_from`` (the other study's path and candidate name); everything
downstream (re-applied variants, latency run, paired verdicts) reads it as if trained here.

Architectures only: a re-applied compressed variant is re-applied here to the (copied) parent.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from models import RTSegConfig
from rtseg_core import (
    ConfigError,
    SettingsMismatchError,
    StudyDir,
    ValidatedResult,
    write_trained,
)
from validate._config import Candidate, check_finished, seed_slot

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


def check_reuse_sources(sources: Sequence[str | os.PathLike], own: Path) -> tuple[Path, ...]:
    """The ``--reuse-from`` folders, resolved; each must be a study (its ``study.json``) other than ``own``."""
    out = []
    for given in sources:
        path = Path(given).expanduser().resolve()
        if not StudyDir(path).has_settings():
            raise ConfigError(f"--reuse-from {given}: not a study folder (no search's study.json in {path})")
        if path == own.resolve():
            raise ConfigError(f"--reuse-from {given}: this is the study being validated; give another study")
        out.append(path)
    return tuple(out)


def find_reusable(
    cand: Candidate, budget: dict[str, Any], seed: int, sources: Sequence[Path], size: int, size_of
) -> tuple[Path, Path, ValidatedResult] | None:
    """The first finished training of ``cand``'s architecture at ``budget``/``seed``/``size`` in ``sources``.

    ``size_of(candidate, budget)``: the size a candidate trains at (validate._train.train_size).
    Returns its study, its folder and its result, or None. The candidate of the same name is looked at first.
    """
    arch = RTSegConfig.from_dict(cand.config, source=f"candidate {cand.name}")
    slot = seed_slot(budget, seed)
    for source in sources:
        other = StudyDir(source)
        base = other.validated(cand.name, slot).parent  # validated/ or validated/seed-<s>/
        names = sorted(p.parent.name for p in base.glob("*/trained.json"))
        names.sort(key=lambda n: n != cand.name)  # stable: the same name first, then by name
        for name in names:
            found = other.read_trained(name, slot)
            folder = other.validated(name, slot)
            if found is None or found.reused_from is not None or not (folder / CHECKPOINT).is_file():
                continue  # a copy is not copied again: its origin is the place to copy from
            try:
                check_finished(found, budget, seed, path=other.trained_json(name, slot), work=folder, fix="-")
                theirs = Candidate.from_attrs(found.candidate)
                same = RTSegConfig.from_dict(theirs.config, source=f"{folder}: config") == arch
            except (SettingsMismatchError, ConfigError):
                continue  # another recipe or an unreadable architecture: not the same training
            if same and size_of(theirs, budget) == size:
                return source, folder, found
    return None


def copy_reused(folder: Path, found: ValidatedResult, cand: Candidate, work: Path, source: Path) -> ValidatedResult:
    """Copy the finished training in ``folder`` into ``work`` (files first, ``trained.json`` last), as ``cand``."""
    work.mkdir(parents=True, exist_ok=True)
    for item in sorted(folder.iterdir()):
        if item.is_file() and item.name != "trained.json":
            # a temporary name, then a rename: a killed copy never leaves a half checkpoint under its name
            fd, tmp = tempfile.mkstemp(dir=work, prefix=f".{item.name}.")
            os.close(fd)
            shutil.copyfile(item, tmp)
            os.replace(tmp, work / item.name)
    result = replace(found, candidate=cand.to_attrs(), reused_from={"study": str(source), "name": found.name})
    write_trained(work, result)
    return result
