"""Atomic file writes (a crash leaves either the old file or the new one, never half of one) and the
suite's one reader of JSON files, bounded against hostile input."""

from __future__ import annotations

import json
import os
import pickletools
import re
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

from rtseg_core._errors import InputFileError, OutputError
from rtseg_core._leftovers import owner_tag, remove_stale_siblings

# Bounds of what a JSON file of the suite may hold. Our files nest a few levels and hold seeds,
# counts and byte sizes; a file nested 100,000 deep (RecursionError in the parser) or holding a
# 5,000-digit integer (ValueError in int()) is refused as an InputFileError naming the file.
MAX_JSON_DEPTH = 100
MAX_JSON_INT_DIGITS = 100  # far past int64 (19 digits): the typed readers name such a field; this guards int()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and an atomic rename."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file path to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_siblings(path)  # temp files of earlier writes that were killed midway
        # the writer's PID@HOST in the name: a later run can prove the file stale once we are gone
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{owner_tag()}.", suffix=".tmp", dir=path.parent)
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
    """Read a JSON file; a missing, malformed or hostile file raises :class:`InputFileError` (a ConfigError) naming it.

    Hostile: nested deeper than :data:`MAX_JSON_DEPTH` or holding an integer of more than
    :data:`MAX_JSON_INT_DIGITS` digits.
    """
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
    return parse_json(text, source=str(path))


class _IntegerTooLong(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise _IntegerTooLong(text)
    return int(text)


def parse_json(text: str, *, source: str) -> Any:
    """JSON text from ``source`` (a file, a device's answer) with the bounds of :func:`read_json`."""
    depth = _max_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise InputFileError(
            f"{source}: JSON nested {depth} levels deep; the suite's files nest at most {MAX_JSON_DEPTH}"
        )
    try:
        return json.loads(text, parse_int=_parse_int)
    except _IntegerTooLong as exc:
        digits = str(exc).lstrip("-")
        line = text.count("\n", 0, max(text.find(digits), 0)) + 1
        raise InputFileError(
            f"{source}: line {line}: an integer of {len(digits)} digits ({digits[:12]}...); "
            f"the suite's files hold integers of at most {MAX_JSON_INT_DIGITS} digits"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:  # a depth _max_depth did not see (it cannot: kept as the last guard)
        raise InputFileError(f"{source}: JSON nested too deeply to read") from None


def _max_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text``, brackets inside strings not counted.

    Strings are removed by one regular expression (C speed), so only the brackets are walked in Python.
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0  # cannot nest deeper than the number of openings
    depth = deepest = 0
    for ch in _BRACKETS.findall(_STRINGS.sub("", text)):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def load_torch_data(path: str | os.PathLike, *, what: str = "file") -> Any:
    """``torch.load(weights_only=True)`` of plain data (tensors, dicts, lists, numbers, text).

    A file that holds Python objects (a pickled module, a payload that would run code) is refused
    with our own message: torch's advises loading it again with ``weights_only=False``, which is
    exactly what must not be done with a file of unknown origin.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        text = str(exc)
        operand = re.search(r"Unsupported operand (\d+)", text)
        if operand:  # e.g. LONG4: an integer of more than 255 bytes, which no file of the suite holds
            op = pickletools.code2op.get(chr(int(operand.group(1))))
            raise InputFileError(
                f"{path}: refused: the {what} is not plain data (pickle opcode {op.name if op else operand.group(1)}, "
                "which the safe loader does not read) and was not loaded"
            ) from None
        if "weights_only" in text or "Unsupported global" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            held = f" ({found.group(1)})" if found else ""
            raise InputFileError(
                f"{path}: refused: the {what} holds Python objects{held}, not only tensors and plain data, and "
                "was not loaded (loading such a file can run code; the suite never writes one)"
            ) from None
        raise InputFileError(f"{path}: not a loadable {what} ({type(exc).__name__}: {text[:200]})") from None


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
