"""All-or-nothing output folders: everything is written to a hidden sibling, renamed at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rtseg_core import CompressionError


@contextlib.contextmanager
def staged_dir(out_dir: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success it replaces ``out_dir`` in one rename.

    On any error the temporary folder is removed and ``out_dir`` is left as it was. An existing
    ``out_dir`` is replaced only with ``overwrite`` (and only after the new one is complete).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CompressionError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise CompressionError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
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
    except OSError:
        if old is not None:
            os.replace(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def output_dir(out_dir: str | os.PathLike, *, stage: bool = True, overwrite: bool = True) -> Iterator[Path]:
    """:func:`staged_dir` when ``stage`` (the default); else ``out_dir`` itself (the caller stages)."""
    if stage:
        with staged_dir(out_dir, overwrite=overwrite) as tmp:
            yield tmp
    else:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        yield out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
