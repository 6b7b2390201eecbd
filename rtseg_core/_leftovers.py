"""Leftovers of killed runs: temporary files and folders named so that a later run can prove they are stale.

A run killed by SIGKILL or the out-of-memory killer cannot clean up after itself: a ``.NAME.*.tmp``
file half written beside an output, a staging folder beside an output folder, a scratch folder
of exported graphs in the temp folder (300 MB for a latency table). Whatever the suite creates
for a while carries the creating process in its name (:func:`owner_tag`, ``PID@HOST``), and
the next run that works in the same place removes leftovers it can prove are ours and stale:

* the name follows our pattern (``.NAME.PID@HOST.XXXXXXXX.tmp`` beside ``NAME``;
  ``rtseg-KIND-PID@HOST-XXXXXXXX`` in the temp folder), the entry belongs to this user, and
* its process is gone: same host and no process with that pid, or
* without a pid in the name (the staging folders of ``staged_output``, files of older versions),
  or made on another host: nothing in it has changed for a day (:data:`STALE_AFTER_S`).

A pid that is alive, even one reused by an unrelated process, keeps the leftover: removing
too little is safe, removing a running job's files is not.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

STALE_AFTER_S = 86400.0
_RANDOM = r"[a-z0-9_]{8}"  # what tempfile.mkstemp/mkdtemp put between prefix and suffix
_TAG = r"(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)"
_SCRATCH = re.compile(rf"^rtseg-[a-z]+(?:-[a-z]+)*-(?:{_TAG}-)?{_RANDOM}$")


def owner_tag() -> str:
    """``PID@HOST`` of this process (read at each call: a forked worker has its own pid)."""
    return f"{os.getpid()}@{_host()}"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:48] or "host"


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory:
    """A ``TemporaryDirectory`` named ``rtseg-KIND-PID@HOST-...``, made after removing stale ones.

    ``kind`` is lowercase letters and dashes (``table``, ``bench-compress``).
    """
    if not re.fullmatch(r"[a-z]+(?:-[a-z]+)*", kind):
        raise ValueError(f"scratch_dir kind {kind!r}: lowercase letters and dashes")
    remove_stale_scratch()
    return tempfile.TemporaryDirectory(prefix=f"rtseg-{kind}-{owner_tag()}-")


def remove_stale_scratch(parent: str | os.PathLike | None = None, *, now: float | None = None) -> list[Path]:
    """Remove our stale scratch folders in ``parent`` (default: the temp folder); returns them."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for entry in _entries(parent):
        m = _SCRATCH.match(entry.name)
        if m and entry.is_dir(follow_symlinks=False) and _stale(entry, m, now=now):
            removed += _remove(Path(entry.path))
    return removed


def remove_stale_siblings(path: str | os.PathLike, *, now: float | None = None) -> list[Path]:
    """Remove the stale temporary files and staging folders of ``path`` beside it; returns them.

    ``.NAME.PID@HOST.XXXXXXXX.tmp`` (an interrupted atomic write) and ``.NAME.XXXXXXXX.tmp`` (a
    staging folder, or an atomic write of an older version) as the module docstring says.
    ``.NAME.old-PID`` (the previous output moved aside during a swap) only when ``NAME`` itself
    exists again: otherwise it is the only copy of the previous output, and it stays.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(?:{_TAG}\.)?{_RANDOM}\.tmp|old-(?P<old>\d+))$")
    removed = []
    for entry in _entries(path.parent):
        m = pattern.match(entry.name)
        if not m:
            continue
        if m.group("old") is not None:
            if path.exists() and not _alive(int(m.group("old"))) and _ours(entry):
                removed += _remove(Path(entry.path))
        elif _stale(entry, m, now=now):
            removed += _remove(Path(entry.path))
    return removed


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:  # a folder we cannot list holds nothing we can clean
        return []


def _ours(entry: os.DirEntry) -> bool:
    try:
        return not entry.is_symlink() and entry.stat(follow_symlinks=False).st_uid == os.getuid()
    except OSError:
        return False


def _stale(entry: os.DirEntry, m: re.Match, *, now: float | None) -> bool:
    if not _ours(entry):
        return False
    pid = m.group("pid")
    if pid is not None and m.group("host") == _host():
        return not _alive(int(pid))
    return (time.time() if now is None else now) - _newest_mtime(Path(entry.path)) > STALE_AFTER_S


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's live process
        return True
    return True


def _newest_mtime(path: Path) -> float:
    """The latest change anywhere in ``path`` (a folder still being filled is not stale)."""
    try:
        newest = path.lstat().st_mtime
    except OSError:
        return time.time()
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except OSError:
                    pass
    return newest


def _remove(path: Path) -> list[Path]:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        log.warning("%s: a stale leftover of a killed run, not removed (%s)", path, exc.strerror or exc)
        return []
    log.info("removed %s, a leftover of a run that was killed", path)
    return [path]
