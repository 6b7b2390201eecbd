"""Output folders that never lose a user's files.

A verb that writes a folder (``prune --out``, ``quantize --out``, ``bench --keep``, ``demo --out``)
marks it with a small manifest (:data:`MANIFEST`: the verb and the files it wrote). A folder may
be replaced or written into only when it is new, empty, or a previous output of the same verb
that holds nothing the suite did not write; ``--overwrite`` lifts that last rule and nothing else.
A folder that holds an input of the run (the checkpoint being quantized, the dataset), the
current folder or the home folder is never replaced, whatever the flags.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from rtseg_core._errors import ConfigError, OutputError
from rtseg_core._io import atomic_write_json

MANIFEST = ".rtseg-output.json"


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of a folder the suite wrote, or None (absent or unreadable: treated as not ours)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("verb"), str) else None


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir() and p.name != MANIFEST)


def check_output_dir(
    out: str | os.PathLike,
    *,
    verb: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
    option: str = "--out",
) -> None:
    """Raise :class:`ConfigError` unless ``verb`` may (re)write the folder ``out`` (see the module doc)."""
    out = Path(out)
    where = f"{option} {out}"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{where}: exists and is not a folder; give a folder path")
    resolved = out.resolve()
    for protected, why in ((Path.cwd(), "the current folder"), (Path.home(), "your home folder")):
        protected = protected.resolve()
        if resolved == protected or resolved in protected.parents:
            raise ConfigError(f"{where}: is {why} or a folder above it; give a new sub-folder")
    for inp in inputs:
        if inp is None:
            continue
        p = Path(inp).resolve()
        if p == resolved or resolved in p.parents:
            raise ConfigError(
                f"{where}: holds an input of this run ({inp}); replacing the folder would delete it. "
                "Write to another folder"
            )
    if not out.exists():
        if out.parent.exists() and not os.access(out.parent, os.W_OK | os.X_OK):
            raise ConfigError(f"{where}: cannot create it ({out.parent} is not writable)")
        return
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: the folder is not writable")
    if not any(out.iterdir()) or overwrite:
        return
    manifest = read_manifest(out)
    if manifest is None:
        raise ConfigError(
            f"{where}: folder exists, is not empty and is not an output of `{verb}` (no {MANIFEST}); "
            "choose a new folder, or pass --overwrite to replace it and everything in it"
        )
    if manifest["verb"] != verb:
        raise ConfigError(
            f"{where}: holds the output of `{manifest['verb']}`, not `{verb}`; choose another folder, "
            "or pass --overwrite to replace it"
        )
    written = manifest.get("files")
    if isinstance(written, list):
        extra = sorted(set(_files(out)) - set(written))
        if extra:
            shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
            raise ConfigError(
                f"{where}: holds files `{verb}` did not write ({shown}); move them away, or pass --overwrite "
                "to replace the folder with them"
            )


def make_folder(folder: str | os.PathLike, *, option: str) -> Path:
    """``mkdir -p`` whose failure is an error line naming the option and the path that blocks."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise OutputError(f"{option} {folder}: cannot create the folder ({exc.strerror}{where})") from None
    return folder


def mark_output(folder: str | os.PathLike, *, verb: str, files: list[str] | None = None) -> None:
    """Write the manifest; ``files=None`` for folders a verb fills in place (``demo``)."""
    atomic_write_json(Path(folder) / MANIFEST, {"verb": verb, "files": files})


@contextlib.contextmanager
def staged_output(
    out: str | os.PathLike,
    *,
    verb: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
    option: str = "--out",
) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``out``; on success it replaces ``out`` in one rename.

    ``out`` is checked first (:func:`check_output_dir`) and again just before the swap, so files
    a user adds during a long run are not lost either. On any error the temporary folder is
    removed and ``out`` is left as it was.
    """
    inputs = list(inputs)
    out = Path(out)
    check_output_dir(out, verb=verb, inputs=inputs, overwrite=overwrite, option=option)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise ConfigError(f"{option} {out}: cannot create a folder beside it ({exc.strerror})") from None
    try:
        yield tmp
        mark_output(tmp, verb=verb, files=_files(tmp))
        check_output_dir(out, verb=verb, inputs=inputs, overwrite=overwrite, option=option)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the result is an ordinary folder
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError as exc:
        if old is not None:
            os.replace(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"{option} {out}: cannot move the finished output into place ({exc.strerror})") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dataset_path(data: str | None) -> str | None:
    """The folder behind a dataset spec (``jnu-ifm:PATH``, ``psfhs:PATH``), to protect as an input."""
    if not data or ":" not in data:
        return None
    kind, _, path = data.partition(":")
    return path if kind in ("jnu-ifm", "psfhs") and path else None
