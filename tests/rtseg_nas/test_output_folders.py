"""Output folders never lose a user's files: every verb that writes a folder, through the CLI, real files."""

from __future__ import annotations

import pytest

from rtseg_core import ConfigError
from rtseg_core._outputs import MANIFEST, read_manifest, staged_output
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
    with pytest.raises(ConfigError, match=r"files `prune` did not write \(results.md\)"):
        with staged_output(out, verb="prune"):
            pass
    # added while a long run is in progress: checked again before the swap, the new output is dropped
    (out / "results.md").unlink()
    with pytest.raises(ConfigError, match="results.md"):
        with staged_output(out, verb="prune") as tmp:
            (tmp / "model.onnx").write_text("third")
            (out / "results.md").write_text("late")
    assert (out / "model.onnx").read_text() == "second" and (out / MANIFEST).is_file()
    with staged_output(out, verb="prune", overwrite=True) as tmp:  # the documented way out
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
