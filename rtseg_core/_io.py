"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

from rtseg_core._errors import InputFileError, OutputError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and an atomic rename."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file path to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({_reason(exc, path)})") from None
    try:
        # mkstemp creates 0600; give the file the mode open() would have: the old file's mode
        # when replacing one, else 0666 less the umask (a report on a lab share stays readable).
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write it ({_reason(exc, path)})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _reason(exc: OSError, path: Path) -> str:
    """The OS's reason and the path that blocks (a parent that is a file...), never our temp file's name."""
    blocking = exc.filename
    if blocking and Path(blocking).name.startswith(f".{path.name}."):
        blocking = path.parent
    return f"{exc.strerror or exc}{': ' + str(blocking) if blocking else ''}"


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask can only set it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:  # set-and-restore is process-wide: keep other threads out meanwhile
        current = os.umask(0o022)
        os.umask(current)
    return current


_UMASK_LOCK = threading.Lock()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` with the same all-or-nothing guarantee as :func:`atomic_write_bytes`."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or malformed file raises :class:`InputFileError` (a ConfigError) naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); a JSON file was expected, not a binary file"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def read_json_object(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """:func:`read_json` of a file that must hold one JSON object (``what`` it is, for the error)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a JSON object {what}, got {type(data).__name__}")
    return data


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths turn up in records; everything else is a bug worth seeing.
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
