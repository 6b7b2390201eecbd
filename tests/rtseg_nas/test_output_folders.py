"""Output folders never lose a user's files: every verb that writes a folder, through the CLI, real files."""

from __future__ import annotations

import pytest

from rtseg_core import MANIFEST, ConfigError, mark_output, read_manifest, staged_output
from rtseg_nas.cli import main


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def ckpt(tmp_path):
    import torch

    from models import Checkpoint, build_model, create_config, save_checkpoint

    cfg = create_config("paper", conv_widths=(8, 16, 32), token_widths=(32, 48))
    model = build_model(cfg)
    path = tmp_path / "run" / "checkpoint.pt"
    path.parent.mkdir()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_checkpoint(
        Checkpoint(config=cfg, state_dict=state, meta={"train": {"data": "synthetic:24", "size": 32}}), path
    )
    (path.parent / "notes.txt").write_text("my notes")
    assert torch.load(path, weights_only=True)
    return path


def test_no_verb_replaces_or_fills_a_folder_it_did_not_write(ckpt, tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("a user's notes")
    (user / "other-run").mkdir()
    (user / "other-run" / "checkpoint.pt").write_bytes(b"another run")
    before_user, before_run = _tree(user), _tree(ckpt.parent)
    c = str(ckpt)
    cases = [
        # the two data-loss cases of issue 10, then every other verb that writes a folder
        (["prune", "--checkpoint", c, "--ratio", "0.3", "--out", str(user)], "not an output of `prune`"),
        (["quantize", "--checkpoint", c, "--out", str(ckpt.parent)], "holds an input of this run"),
        (["quantize", "--checkpoint", c, "--out", str(ckpt.parent), "--overwrite"], "holds an input"),
        (["prune", "--checkpoint", c, "--ratio", "0.3", "--out", str(tmp_path), "--overwrite"], "holds an input"),
        (["quantize", "--checkpoint", c, "--out", str(user)], "not an output of `quantize`"),
        (["bench", "--checkpoint", c, "--compression", "--keep", str(user)], "not an output of `bench`"),
        (["demo", "--out", str(user)], "not an output of `demo`"),
        (["report", "--study", str(tmp_path), "--out", str(user)], "not an output of `report`"),
        (["train", "--out", str(ckpt.parent), "--data", "synthetic:8", "--size", "32"], "already holds a checkpoint"),
        (["prune", "--checkpoint", c, "--ratio", "0.3", "--out", "."], "current folder"),
        (["prune", "--checkpoint", c, "--ratio", "0.3", "--out", str(user / "notes.txt")], "not a folder"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (argv, err)
    assert _tree(user) == before_user and _tree(ckpt.parent) == before_run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "run"]  # no staging folder left behind


def test_a_previous_output_of_the_same_verb_is_replaced_but_not_files_added_to_it(tmp_path):
    out = tmp_path / "out"
    with staged_output(out, verb="prune") as tmp:
        (tmp / "model.onnx").write_text("first")
    assert read_manifest(out) == {"verb": "prune", "files": ["model.onnx"]}
    with staged_output(out, verb="prune") as tmp:  # a rerun replaces its own output
        (tmp / "model.onnx").write_text("second")
    assert (out / "model.onnx").read_text() == "second"
    with pytest.raises(ConfigError, match="output of `prune`, not `quantize`"):
        with staged_output(out, verb="quantize"):
            pass
    (out / "results.md").write_text("written by the user after the run")
    with pytest.raises(ConfigError, match=r"1 file\(s\) \(results.md\) that `prune` did not write"):
        with staged_output(out, verb="prune"):
            pass
    # added while a long run is in progress: checked again before the swap, the new output is dropped
    (out / "results.md").unlink()
    with pytest.raises(ConfigError, match="results.md"):
        with staged_output(out, verb="prune") as tmp:
            (tmp / "model.onnx").write_text("third")
            (out / "results.md").write_text("late")
    assert (out / "model.onnx").read_text() == "second" and (out / MANIFEST).is_file()
    with pytest.raises(ConfigError, match="results.md"):  # issue 23: --overwrite never deletes it either
        with staged_output(out, verb="prune", overwrite=True):
            pass
    assert (out / "results.md").read_text() == "late"
    (out / "results.md").unlink()  # the user moves it away: then the output is theirs to replace
    with staged_output(out, verb="prune", overwrite=True) as tmp:
        (tmp / "model.onnx").write_text("fourth")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "model.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///", "sqlite:///x.db?mode=memory"])
def test_storage_that_cannot_outlive_the_process_is_refused(url, tmp_path, capsys):
    study = tmp_path / "study"
    assert main(["search", "--study", str(study), "--storage", url, "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --storage") and "in-memory SQLite" in err
    assert not (study / "trials").exists()


# -- issue 23: nothing lost, whatever the flags ----------------------------------------------------

SMALL = {"conv_widths": (8, 16, 32), "token_widths": (32, 48)}


def _one_error_line(argv, capsys) -> str:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, (argv, rc, err[-2000:])
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _write_psfhs(root, n: int, size: int = 32) -> None:
    """A tiny PSFHS folder in its real format (``image_mha/`` 3 x H x W, ``label_mha/`` 0/1/2), as
    tests/segmentation/conftest.py writes it."""
    import numpy as np
    import SimpleITK as sitk

    from segmentation import make_phantom

    (root / "image_mha").mkdir(parents=True)
    (root / "label_mha").mkdir()
    for i in range(n):
        image, mask = make_phantom(size, i)
        gray = (image * 255).round().astype(np.uint8)
        sitk.WriteImage(sitk.GetImageFromArray(np.stack([gray, gray, gray])), str(root / "image_mha" / f"{i:05d}.mha"))
        sitk.WriteImage(sitk.GetImageFromArray(mask), str(root / "label_mha" / f"{i:05d}.mha"))


@pytest.fixture
def arch_json(tmp_path):
    import json

    from models import create_config

    path = tmp_path / "small.json"
    path.write_text(json.dumps(create_config("paper", **SMALL).to_dict()))
    return path


def test_prune_and_quantize_without_data_never_replace_the_checkpoints_own_dataset(tmp_path, arch_json, capsys):
    work = tmp_path / "work"
    data = work / "psfhs"
    _write_psfhs(data, 12)
    run = tmp_path / "run"
    argv = ["train", "--arch", arch_json, "--data", f"psfhs:{data}", "--size", "32", "--epochs", "1"]
    assert main([str(a) for a in [*argv, "--batch-size", "4", "--out", run]]) == 0
    capsys.readouterr()
    # `work` even looks like an earlier prune output listing every file: only the input rule is left to say no
    mark_output(work, verb="prune", files=[str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()])
    before = _tree(work)
    c = run / "checkpoint.pt"
    for argv in (
        ["prune", "--checkpoint", c, "--ratio", "0.2", "--no-eval", "--out", work, "--overwrite"],
        ["quantize", "--checkpoint", c, "--no-eval", "--no-latency", "--out", work, "--overwrite"],
        ["prune", "--checkpoint", c, "--ratio", "0.2", "--no-eval", "--out", data, "--overwrite"],
        [
            "prune",
            "--checkpoint",
            c,
            "--ratio",
            "0.2",
            "--no-eval",
            "--out",
            "x",
            "--json",
            data / "label_mha" / "00000.mha",
        ],
    ):
        line = _one_error_line(argv, capsys)
        assert "input of this run" in line or "inside" in line, line
        assert str(data) in line, line
    assert _tree(work) == before


def test_a_file_output_never_names_a_file_the_run_reads(ckpt, arch_json, tmp_path, capsys):
    study = tmp_path / "study"
    assert main(["search", "--study", str(study), "--trials", "0", "--no-progress"]) == 0
    capsys.readouterr()
    c, a, s = ckpt, arch_json, study / "study.json"
    before = {p: p.read_bytes() for p in (c, a, s)}
    cases = [
        (["export", "--checkpoint", c, "--size", "32", "--out", c], "is an input of this run"),
        (["export", "--arch", a, "--size", "32", "--out", a], "is an input of this run"),
        (["export", "--checkpoint", c, "--size", "32", "--out", tmp_path / "m.onnx", "--json", c], "is an input"),
        (["evaluate", "--checkpoint", c, "--json", c], "is an input of this run"),
        (["evaluate", "--checkpoint", c, "--csv", c], "is an input of this run"),
        (["profile", "--checkpoint", c, "--no-count", "--runs", "1", "--json", c], "is an input of this run"),
        (["bench", "--checkpoint", c, "--rounds", "1", "--json", c], "is an input of this run"),
        (["info", "--arch", a, "--json", a], "is an input of this run"),
        (["prune", "--checkpoint", c, "--ratio", "0.3", "--out", tmp_path / "p", "--json", c], "is an input"),
        (["quantize", "--checkpoint", c, "--out", tmp_path / "q", "--json", c], "is an input of this run"),
        (["validate", "--study", study, "--json", s], "would replace a file inside"),
        (["report", "--study", study, "--json", s], "would replace a file inside"),
    ]
    for argv, message in cases:
        line = _one_error_line(argv, capsys)
        assert message in line, (argv, line)
    assert {p: p.read_bytes() for p in (c, a, s)} == before
    from rtseg_core import StudyDir

    assert StudyDir(study).has_settings()  # the study still opens
    assert not (tmp_path / "p").exists() and not (tmp_path / "q").exists() and not (tmp_path / "m.onnx").exists()


def test_train_and_supernet_train_never_write_into_a_users_folder(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "metrics.json").write_text('{"my": "results"}')
    before = _tree(user)
    tiny = ["--data", "synthetic:8", "--size", "32", "--epochs", "1"]
    for argv in (
        ["train", "--out", user, *tiny],
        ["train", "--out", user, *tiny, "--overwrite"],
        ["train", "--out", user, *tiny, "--resume"],
        ["supernet", "train", "--out", user, *tiny],
    ):
        line = _one_error_line(argv, capsys)
        assert "holds 1 file(s) (metrics.json)" in line and "not an output of" in line, line
    assert _tree(user) == before
    # a run refused for another reason writes no folder and no manifest either
    line = _one_error_line(["train", "--out", tmp_path / "new", "--data", "synthetic:100000000"], capsys)
    assert "synthetic" in line and not (tmp_path / "new").exists()


def test_train_resumes_its_own_folder_and_leaves_the_users_files_alone(tmp_path, arch_json, capsys):
    run = tmp_path / "run"
    tiny = ["--arch", str(arch_json), "--data", "synthetic:8", "--size", "32", "--batch-size", "4"]
    assert main(["train", *tiny, "--epochs", "1", "--out", str(run)]) == 0
    assert read_manifest(run) == {"verb": "train", "files": ["checkpoint.pt", "metrics.json"]}
    (run / "notes.txt").write_text("mine")
    (run / MANIFEST).unlink()  # and a run from before manifests resumes too
    assert main(["train", *tiny, "--epochs", "2", "--out", str(run), "--resume"]) == 0
    assert (run / "notes.txt").read_text() == "mine"
    assert read_manifest(run)["verb"] == "train"
    capsys.readouterr()


def test_train_fine_tunes_a_supernet_extract_folder_in_place(tmp_path, arch_json, capsys):
    import json

    import torch

    from models import Checkpoint, build_model, create_config, save_checkpoint

    out = tmp_path / "extracted"
    cfg = create_config("paper", **SMALL)
    with staged_output(out, verb="supernet extract") as tmp:  # what `supernet extract` leaves
        state = {k: v.detach().clone() for k, v in build_model(cfg).state_dict().items()}
        save_checkpoint(Checkpoint(config=cfg, state_dict=state), tmp / "checkpoint.pt")
        (tmp / "config.json").write_text(json.dumps(cfg.to_dict()))
    config_before = (out / "config.json").read_bytes()
    argv = ["train", "--arch", out / "config.json", "--out", out, "--data", "synthetic:8", "--size", "32"]
    assert main([str(a) for a in [*argv, "--epochs", "1", "--batch-size", "4", "--resume"]]) == 0
    assert (out / "config.json").read_bytes() == config_before
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert read_manifest(out) == {"verb": "train", "files": ["checkpoint.pt", "config.json", "metrics.json"]}
    capsys.readouterr()


def test_search_never_writes_into_a_folder_that_is_not_a_study(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "history.csv").write_text("my,own\n1,2\n")
    (user / "environment.json").write_text('{"mine": true}')
    before = _tree(user)
    line = _one_error_line(["search", "--study", user, "--trials", "0", "--no-progress"], capsys)
    assert "--study" in line and "holds 2 file(s) (environment.json, history.csv)" in line, line
    assert _tree(user) == before and sorted(p.name for p in user.iterdir()) == ["environment.json", "history.csv"]
    study = tmp_path / "study"  # a study resumes, and a study from before manifests too
    assert main(["search", "--study", str(study), "--trials", "0", "--no-progress"]) == 0
    assert read_manifest(study) == {"verb": "search", "files": None}
    (study / MANIFEST).unlink()
    assert main(["search", "--study", str(study), "--trials", "0", "--no-progress"]) == 0
    capsys.readouterr()


def test_overwrite_replaces_the_verbs_own_output_but_never_a_users_file_in_it(ckpt, tmp_path, capsys):
    out = tmp_path / "pruned"
    argv = ["prune", "--checkpoint", str(ckpt), "--ratio", "0.3", "--no-eval", "--out", str(out)]
    assert main(argv) == 0
    first = _tree(out)
    assert sorted(first) == [MANIFEST, "checkpoint.pt", "model.onnx", "prune.json"]
    (out / "notes.txt").write_text("the user's")
    line = _one_error_line([*argv, "--overwrite"], capsys)
    assert "holds 1 file(s) (notes.txt) that `prune` did not write" in line, line
    assert _tree(out) == {**first, "notes.txt": b"the user's"}
    (out / "notes.txt").unlink()
    assert main([*argv, "--overwrite"]) == 0  # its own earlier output, all of it listed: replaced
    assert sorted(_tree(out)) == sorted(first) and read_manifest(out)["verb"] == "prune"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pruned", "run"]  # nothing left aside
    capsys.readouterr()
