"""Output rules of issue 23 through their check functions, on real folders and files in tmp_path.

Nothing here replaces or deletes a folder outside tmp_path: the protected folders (real home,
root, mount points, another user's folder) are only ever handed to the check functions, which
must refuse them before touching anything.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from rtseg_core import (
    MANIFEST,
    ConfigError,
    check_file_output,
    check_not_protected,
    check_output_dir,
    dataset_path,
    mark_output,
    read_manifest,
    real_home,
    staged_output,
)

NOBODY = 65534


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _prune_output(folder: Path, files: dict[str, str]) -> Path:
    """A real earlier output of `prune`, as staged_output leaves it."""
    with staged_output(folder, verb="prune") as tmp:
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)
    return folder


# -- protected folders ---------------------------------------------------------------------------


def test_the_real_home_from_the_password_database_is_refused_whatever_HOME_says(tmp_path, monkeypatch):
    import pwd

    home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    assert real_home() == home
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))  # sudo -E, a service, a container
    with pytest.raises(ConfigError, match="your home folder"):
        check_not_protected(home)
    with pytest.raises(ConfigError, match="your home folder"):  # the same through the folder rule, --overwrite
        check_output_dir(home, verb="prune", overwrite=True)
    # and $HOME itself, and any folder holding it
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ConfigError, match=r"is \$HOME"):
        check_not_protected(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=r"holds \$HOME"):
        check_output_dir(tmp_path, verb="prune", overwrite=True)


def test_root_top_level_and_system_folders_are_refused(monkeypatch):
    # From "/": a checkout under /tmp (CI's clone) would make /tmp "the folder holding the current folder" first.
    monkeypatch.chdir("/")
    for folder, message in [
        ("/", "holds your home folder|top-level|current folder"),
        ("/tmp", "top-level"),
        ("/home", "top-level"),
        ("/var", "top-level"),
        ("/usr/local/share", "system folder /usr"),
        ("/etc/ssh", "system folder /etc"),
        ("/var/lib/dpkg", "system folder /var/lib"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_output_dir(folder, verb="prune", overwrite=True)


def test_a_mount_point_is_refused():
    mounts = [p for p in ("/dev/shm", "/sys/fs/cgroup", "/proc", "/dev", "/sys") if os.path.ismount(p)]
    assert mounts, "no mount point found among /dev/shm, /sys/fs/cgroup, /proc, /dev, /sys"
    for mount in mounts:
        with pytest.raises(ConfigError, match="mount point|top-level"):
            check_not_protected(mount)
    deep = [m for m in mounts if len(Path(m).parts) > 2]
    if deep:  # below the top level, the mount rule itself says no
        with pytest.raises(ConfigError, match="is a mount point"):
            check_output_dir(deep[0], verb="prune", overwrite=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_folder_owned_by_another_user_is_refused_before_anything_is_touched(tmp_path):
    theirs = _prune_output(tmp_path / "theirs", {"model.onnx": "theirs"})  # even a valid earlier output
    before = _tree(theirs)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match=f"owned by another user \\(uid {NOBODY}"):
        check_not_protected(theirs)
    with pytest.raises(ConfigError, match="owned by another user"):
        with staged_output(theirs, verb="prune", overwrite=True):
            pytest.fail("the run must not start")
    assert _tree(theirs) == before
    # a file of another user inside a folder that is ours: replacing the folder would delete it
    os.chown(theirs, os.geteuid(), os.getegid())
    os.chown(theirs / "model.onnx", NOBODY, NOBODY)
    with pytest.raises(ConfigError, match="model.onnx, owned by another user"):
        check_output_dir(theirs, verb="quantize", overwrite=True)
    assert _tree(theirs) == before


def test_the_current_folder_and_every_folder_above_it_are_refused(tmp_path, monkeypatch):
    here = tmp_path / "a" / "b"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    with pytest.raises(ConfigError, match="is the current folder"):
        check_output_dir(".", verb="prune", overwrite=True)
    with pytest.raises(ConfigError, match="holds the current folder"):
        check_output_dir(tmp_path / "a", verb="prune", overwrite=True)
    check_output_dir(tmp_path / "new", verb="prune")  # a sibling is fine


def test_a_symbolic_link_is_not_replaced(tmp_path):
    real = _prune_output(tmp_path / "real", {"model.onnx": "x"})
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(ConfigError, match="symbolic link"):
        check_output_dir(tmp_path / "link", verb="prune", overwrite=True)


# -- what --overwrite may replace ------------------------------------------------------------------


def test_overwrite_never_replaces_a_file_the_manifest_does_not_list(tmp_path):
    out = _prune_output(tmp_path / "out", {"model.onnx": "first", "sub/prune.json": "{}"})
    assert read_manifest(out) == {"verb": "prune", "files": ["model.onnx", "sub/prune.json"]}
    (out / "my-results.md").write_text("a user's notes")
    before = _tree(out)
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match=r"holds 1 file\(s\) \(my-results.md\) that `prune` did not write"):
            with staged_output(out, verb="prune", overwrite=overwrite):
                pytest.fail("the run must not start")
    with pytest.raises(ConfigError, match=r"holds 1 file\(s\) \(my-results.md\) that `prune` did not write"):
        with staged_output(out, verb="quantize", overwrite=True):  # taking over another verb's output: the same
            pytest.fail("the run must not start")
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_a_folder_without_manifest_is_refused_with_its_count_and_a_few_names(tmp_path):
    user = tmp_path / "mine"
    for i in range(5):
        (user / "data").mkdir(parents=True, exist_ok=True)
        (user / "data" / f"{i}.png").write_bytes(b"png")
    (user / "empty").mkdir()
    before = _tree(user)
    with pytest.raises(ConfigError) as info:
        check_output_dir(user, verb="prune", overwrite=True)
    message = str(info.value)
    assert "holds 6 file(s) (data/0.png, data/1.png, data/2.png, ...)" in message, message
    assert "not an output of `prune`" in message and "with or without --overwrite" in message
    assert _tree(user) == before and (user / "empty").is_dir()


def test_a_folder_filled_in_place_is_never_replaced(tmp_path):
    demo = tmp_path / "demo"
    demo.mkdir()
    mark_output(demo, verb="demo")  # files None: the demo does not list what it writes
    (demo / "stages.json").write_text("{}")
    with pytest.raises(ConfigError, match="filled in place by `demo`"):
        check_output_dir(demo, verb="prune", overwrite=True)
    check_output_dir(demo, verb="demo", in_place=True)  # the demo itself resumes in it


def test_overwrite_takes_over_another_verbs_output_and_logs_how_many_files_go(tmp_path, caplog):
    out = _prune_output(tmp_path / "out", {"model.onnx": "pruned", "prune.json": "{}", "checkpoint.pt": "w"})
    with pytest.raises(ConfigError, match="output of `prune`, not `quantize`"):
        with staged_output(out, verb="quantize"):
            pass
    with caplog.at_level(logging.INFO, logger="rtseg_core._outputs"):
        with staged_output(out, verb="quantize", overwrite=True) as tmp:
            (tmp / "model.onnx").write_text("int8")
    assert "replacing 3 file(s) of the earlier `prune` output" in caplog.text
    assert _tree(out) == {MANIFEST: (out / MANIFEST).read_bytes(), "model.onnx": b"int8"}
    assert read_manifest(out) == {"verb": "quantize", "files": ["model.onnx"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_in_place_writer_continues_its_own_folder_and_leaves_other_files_alone(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    mark_output(run, verb="train", files=["checkpoint.pt", "metrics.json"])
    (run / "notes.txt").write_text("mine")
    check_output_dir(run, verb="train", in_place=True)  # resumes: notes.txt is never touched
    user = tmp_path / "user"
    user.mkdir()
    (user / "metrics.json").write_text('{"mine": 1}')
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match=r"1 file\(s\) \(metrics.json\) and is not an output of `train`"):
            check_output_dir(user, verb="train", in_place=True, overwrite=overwrite)
    assert (user / "metrics.json").read_text() == '{"mine": 1}'


# -- inputs ----------------------------------------------------------------------------------------


def test_no_output_folder_names_or_holds_an_input(tmp_path):
    data = tmp_path / "work" / "dataset"
    data.mkdir(parents=True)
    (data / "0.mha").write_bytes(b"image")
    work = tmp_path / "work"
    mark_output(work, verb="prune", files=["dataset/0.mha"])  # even listed in a manifest, an input is kept
    for out in (work, data):
        with pytest.raises(ConfigError, match="input of this run"):
            check_output_dir(out, verb="prune", inputs=[str(data)], overwrite=True)
    # filled in place, a folder may hold an input that is not among the names the verb writes
    check_output_dir(work, verb="prune", inputs=[data], in_place=True, writes=("checkpoint.pt",))
    with pytest.raises(ConfigError, match="holds an input"):
        check_output_dir(work, verb="prune", inputs=[data], in_place=True, writes=("dataset",))


def test_a_file_output_never_replaces_what_the_run_reads(tmp_path):
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"weights")
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.json").write_text("{}")
    inputs = [str(ckpt), str(study), None]
    with pytest.raises(ConfigError, match=r"--json .*checkpoint.pt: is an input of this run"):
        check_file_output(ckpt, inputs, option="--json")
    (tmp_path / "link.pt").symlink_to(ckpt)
    with pytest.raises(ConfigError, match="is an input of this run"):
        check_file_output(tmp_path / "link.pt", inputs, option="--out")
    with pytest.raises(ConfigError, match="would replace a file inside .*study"):
        check_file_output(study / "study.json", inputs, option="--json")
    with pytest.raises(ConfigError, match="is a folder"):
        check_file_output(study, [], option="--json")
    check_file_output(study / "new.json", inputs, option="--json")  # a new file beside the inputs
    check_file_output(ckpt.with_name("evaluation_test.json"), inputs, option="--json")
    check_file_output("-", inputs, option="--json")
    check_file_output(None, inputs, option="--json")
    assert ckpt.read_bytes() == b"weights" and (study / "study.json").read_text() == "{}"


def test_dataset_path_protects_every_spelling_of_a_dataset_folder():
    assert dataset_path("jnu-ifm:/data/JNU") == "/data/JNU"
    assert dataset_path("jnu:/data/JNU") == "/data/JNU"  # an alias of the dataset module
    assert dataset_path("PSFHS: /data/ps ") == "/data/ps"
    assert dataset_path("fh-ps-aop:rel/ps") == "rel/ps"
    assert dataset_path("synthetic:300") is None
    assert dataset_path("synthetic") is None
    assert dataset_path(None) is None


def test_a_replaced_folder_keeps_what_its_manifest_does_not_list_visible_and_apart(tmp_path):
    from rtseg_core._leftovers import remove_stale_siblings
    from rtseg_core._outputs import _remove_listed

    out = _prune_output(tmp_path / "out", {"model.onnx": "old", "sub/prune.json": "{}"})
    (out / "late.txt").write_text("added after the last check")  # the window between check and swap
    old = out.rename(tmp_path / ".out.old-1")
    (tmp_path / "out").mkdir()  # the new output in place
    _remove_listed(old, ["model.onnx", "sub/prune.json"])
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("out.kept-")]
    assert len(kept) == 1 and _tree(kept[0]) == {"late.txt": b"added after the last check"}
    assert remove_stale_siblings(tmp_path / "out") == []  # no leftover clean-up takes it
    assert kept[0].exists()
