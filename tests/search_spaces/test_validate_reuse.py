"""validate --reuse-from STUDY: another study's finished training of the same architecture and recipe is
copied, not trained again; another recipe trains; a folder that is not a study (or this study) is refused.

Real tiny searches and trainings; the second and third studies are copies of the first's search (before
it was validated), so their architectures are the same ones.
"""

from __future__ import annotations

import shutil

import pytest

from rtseg_core import CandidateRecord, ConfigError, StudyDir, read_json
from search_spaces import run_search

from .test_validate import validate_in_process


def _run(study, epochs, *reuse_from):
    """In-process (no interpreter start per run): validate with test_validate's tiny recipe."""
    from validate import ValidateConfig, run_validate

    return run_validate(ValidateConfig(study_dir=study, epochs=epochs, size=32, batch_size=4, latency_size=32,
                                       reuse_from=reuse_from))  # fmt: skip


def test_reuse_copies_the_same_architecture_and_recipe_and_trains_another_recipe(tmp_path, searched_study, caplog):
    first = tmp_path / "a"
    template, summary = searched_study(2)  # a copy of the session's tiny 2-trial search
    shutil.copytree(template, first)
    names = {m.name for m in summary.front} | {"paper"}
    second, third = tmp_path / "b", tmp_path / "c"
    shutil.copytree(first, second)  # the same search, not yet validated
    shutil.copytree(first, third)
    _run(first, 1)
    a = StudyDir(first)
    before = {p: p.read_bytes() for p in a.validated_dir.rglob("*") if p.is_file()}

    caplog.set_level("INFO", logger="validate")
    done = _run(second, 1, first)
    b = StudyDir(second)
    for name in names:
        copied = b.read_trained(name)
        assert copied.reused_from == {"study": str(first.resolve()), "name": name}
        assert (b.validated(name) / "checkpoint.pt").read_bytes() == (a.validated(name) / "checkpoint.pt").read_bytes()
        assert copied.test == a.read_trained(name).test and copied.budget == a.read_trained(name).budget
        assert f"reused {name} from {first.resolve()} (same architecture and recipe)" in caplog.text
        record = CandidateRecord.from_dict(read_json(b.validated(name) / "candidate.json"))
        assert record.dice == a.read_trained(name).test.dice  # downstream reads the copy as if trained here
    assert done.trained_now == ()  # copies are reported as reused, not as trained
    # the other study was only read
    assert {p: p.read_bytes() for p in a.validated_dir.rglob("*") if p.is_file()} == before

    # another recipe (--epochs 2) is not the same training: it trains here
    caplog.clear()
    other = _run(third, 2, first)
    c = StudyDir(third)
    assert "reused" not in caplog.text and set(other.trained_now) == names
    for name in names:
        trained = c.read_trained(name)
        assert trained.reused_from is None and trained.budget["epochs"] == 2 and trained.epochs_trained == 2
        assert "reused_from" not in read_json(c.trained_json(name))


def test_reuse_from_must_be_another_study_before_any_work(tmp_path, tiny_search, capsys, caplog):
    from validate import ValidateConfig, run_validate

    study = tmp_path / "nas"
    run_search(tiny_search(study, trials=1))
    plain = tmp_path / "plain"
    plain.mkdir()
    for given, message in ((plain, "not a study folder"), (study, "this is the study being validated")):
        with pytest.raises(ConfigError, match=f"--reuse-from {given}: {message}"):
            run_validate(ValidateConfig(study_dir=study, epochs=1, size=32, reuse_from=(given,)))
        assert not StudyDir(study).validated_dir.exists()
    # the CLI (in-process): one error line, exit 2
    done = validate_in_process(capsys, caplog, study, "--epochs", "1", "--reuse-from", str(plain), rc=2)
    assert "error: --reuse-from" in done.stderr and "not a study folder" in done.stderr
