"""Leftovers of killed runs are removed by the next run, and only those it can prove are ours and stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rtseg_core import atomic_write_json, owner_tag, read_json, remove_stale_scratch, scratch_dir
from rtseg_core._leftovers import STALE_AFTER_S, _host

ROOT = Path(__file__).resolve().parents[2]

# A run that is killed in the middle: a scratch folder of 2 MB and a half-written temp file beside its output.
_VICTIM = """
import os, sys, tempfile, time
from pathlib import Path
tempfile.tempdir = sys.argv[1]
from rtseg_core import owner_tag, scratch_dir
held = scratch_dir("table")  # kept referenced: its finalizer would remove it
work = held.name
(Path(work) / "kernels.onnx").write_bytes(os.urandom(2_000_000))
out = Path(sys.argv[2])
(out.parent / f".{out.name}.{owner_tag()}.abcd1234.tmp").write_text('{"half": ')
(out.parent / "ready").write_text(work)
time.sleep(600)
"""


def _dead_pid() -> int:
    """The pid of a process that has ended (reaped): a pid no process has now."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_killed_runs_scratch_folder_and_temp_file_are_removed_by_the_next_run(tmp_path):
    scratch, outputs = tmp_path / "tmp", tmp_path / "out"
    scratch.mkdir()
    outputs.mkdir()
    out = outputs / "table.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _VICTIM, str(scratch), str(out)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (outputs / "ready").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (outputs / "ready").exists(), "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = Path((outputs / "ready").read_text())
    assert left.is_dir() and left.name.startswith(f"rtseg-table-{proc.pid}@")
    # someone else's files that look alike, and our own running ones, stay
    live = scratch / f"rtseg-table-{owner_tag()}-live0000"
    live.mkdir()
    foreign = scratch / "rtseg-tablet"
    foreign.mkdir()

    atomic_write_json(out, {"done": True})  # the next run writes the same output ...
    assert sorted(p.name for p in outputs.iterdir()) == ["ready", "table.json"]  # ... and its temp file is gone
    assert read_json(out) == {"done": True}
    assert remove_stale_scratch(scratch) == [left]
    assert sorted(p.name for p in scratch.iterdir()) == sorted([live.name, foreign.name])


def test_only_leftovers_proven_stale_are_removed(tmp_path):
    out = tmp_path / "checkpoint.pt"
    dead, host = _dead_pid(), _host()
    names = {
        "dead": f".checkpoint.pt.{dead}@{host}.a1b2c3d4.tmp",  # our pattern, its process gone
        "alive": f".checkpoint.pt.{os.getpid()}@{host}.a1b2c3d4.tmp",  # a writer that is still running
        "other_host": f".checkpoint.pt.{dead}@another-machine.a1b2c3d4.tmp",  # its pid is not ours to test
        "old_staging": ".checkpoint.pt.k2j4h5g6.tmp",  # no pid: a staging folder untouched for two days
        "new_staging": ".checkpoint.pt.z9y8x7w6.tmp",  # no pid: still being filled
        "user_file": ".checkpoint.pt.notes.tmp",  # not our pattern
        "other_output": f".metrics.json.{dead}@{host}.a1b2c3d4.tmp",  # another output's: its own writer cleans it
    }
    for key, name in names.items():
        path = tmp_path / name
        if "staging" in key:
            path.mkdir()
            (path / "model.onnx").write_bytes(b"x")
        else:
            path.write_text("partial")
    two_days = time.time() - 2 * STALE_AFTER_S
    for entry in (tmp_path / names["old_staging"], tmp_path / names["old_staging"] / "model.onnx"):
        os.utime(entry, (two_days, two_days))
    atomic_write_json(out, {"epoch": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [out.name] + [names[k] for k in ("alive", "other_host", "new_staging", "user_file", "other_output")]
    )


def test_scratch_folders_carry_their_owner_and_vanish_after_use(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with scratch_dir("predict") as work:
        assert Path(work).parent == tmp_path and Path(work).name.startswith(f"rtseg-predict-{owner_tag()}-")
    assert list(tmp_path.iterdir()) == []
