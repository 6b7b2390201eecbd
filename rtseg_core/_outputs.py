"""Outputs that never lose a user's files, whatever the flags (issues 10 and 23).

Folders. A verb that writes a folder marks it with a small manifest (:data:`MANIFEST`: the verb
and, where it knows them, the files it wrote). It may write a folder only when the folder is
new, empty, or its own earlier output; :func:`check_output_dir` is that rule, for the verbs
that replace their folder whole (:func:`staged_output`: ``prune``/``quantize --out``,
``bench --keep``, ``supernet extract``, ``report --compare``) and for those that fill it in
place (``train``, ``supernet train``, ``search --study``, ``demo``, ``report``).
``--overwrite`` lifts one rule only: it lets a verb take over another verb's output. It never
deletes what the suite did not write: only the files a manifest lists are ever replaced, and a
folder holding any other file is refused, with their count and a few of their names.

Never an output folder, whatever the flags: a protected folder (:mod:`rtseg_core._protected`:
the root, top-level and system folders, home, the current folder and any folder above them,
mount points, another user's folders), and a folder that is or holds an input of the run.

Files. :func:`check_file_output` is the one check of every file option (``--json``, ``--csv``,
``export --out``...): a file output never names a file the run reads (the checkpoint, the
``--arch`` file, ``study.json``...) nor replaces a file inside a folder the run reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from rtseg_core._errors import ConfigError, OutputError
from rtseg_core._io import atomic_write_json
from rtseg_core._leftovers import remove_stale_siblings
from rtseg_core._protected import check_not_protected

log = logging.getLogger(__name__)

MANIFEST = ".rtseg-output.json"
_SHOWN = 3  # names quoted in a refusal
_MAX_COUNTED = 100_000  # files counted for a refusal of a folder the suite did not write

Inputs = Iterable[str | os.PathLike | None]


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of a folder the suite wrote, or None (absent or unreadable: treated as not ours)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("verb"), str):
        return None
    files = data.get("files")
    if files is not None and not (isinstance(files, list) and all(isinstance(f, str) for f in files)):
        return None
    return data


def dataset_path(data: str | None) -> str | None:
    """The folder behind a ``--data`` spec (``jnu-ifm:PATH``, ``psfhs:PATH`` or an alias), to protect
    as an input. Any ``KIND:REST`` whose REST is not a count is taken as a path: the kinds and
    their aliases are the dataset module's to know, and protecting one path too many costs nothing.
    """
    if not data or ":" not in str(data):
        return None
    _, _, rest = str(data).partition(":")
    rest = rest.strip()
    return rest if rest and not rest.isdigit() else None


def _listing(folder: Path, *, where: str, limit: int | None = None) -> list[str]:
    """Every file, link and empty folder (``name/``) under ``folder``, relative and POSIX, links not
    followed, the manifest left out.

    A mount point or an entry owned by another user inside it is refused here: replacing the
    folder would reach into another file system or delete another user's files. ``limit``: stop
    counting there (a refusal need not walk a whole disk to say "many").
    """
    found: list[str] = []
    euid = os.geteuid()
    for root, dirs, files in os.walk(folder, followlinks=False):
        here = Path(root)
        if here != folder and not dirs and not files:
            found.append(here.relative_to(folder).as_posix() + "/")
        for name in dirs:
            sub = here / name
            if os.path.ismount(sub):
                raise ConfigError(f"{where}: holds a mount point ({sub}); give another folder")
        for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
            path = here / name
            if path == folder / MANIFEST:
                continue
            try:
                owner = path.lstat().st_uid
            except OSError:
                continue  # removed meanwhile
            if owner != euid:
                raise ConfigError(f"{where}: holds {path}, owned by another user (uid {owner}); give another folder")
            found.append(path.relative_to(folder).as_posix())
            if limit is not None and len(found) >= limit:
                return sorted(found)
    return sorted(found)


def _is_manifest(name: str) -> bool:
    # The manifest, or its temporary file while another worker writes it (atomic_write_json).
    return name == MANIFEST or (name.startswith(f".{MANIFEST}.") and name.endswith(".tmp"))


def _names(files: list[str]) -> str:
    count = f"{len(files)}{'+' if len(files) >= _MAX_COUNTED else ''} file(s)"
    shown = ", ".join(files[:_SHOWN]) + (", ..." if len(files) > _SHOWN else "")
    return f"{count} ({shown})"


def _resolve(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path))).resolve()


def _check_inputs(out: Path, inputs: Inputs, *, where: str, in_place: bool, writes: Collection[str] | None) -> None:
    resolved = _resolve(out)
    for inp in inputs:
        if inp is None:
            continue
        p = _resolve(inp)
        if p == resolved:
            raise ConfigError(f"{where}: is an input of this run ({inp}); write the output to another folder")
        if resolved not in p.parents:
            continue
        if in_place and writes is not None:
            # Filled in place, the folder loses nothing but the names the verb writes.
            targets = [resolved / w for w in (*writes, MANIFEST)]
            if not any(p == t or t in p.parents for t in targets):
                continue
        raise ConfigError(
            f"{where}: holds an input of this run ({inp}); writing the output there could replace it. "
            "Write to another folder"
        )


def check_output_dir(
    out: str | os.PathLike,
    *,
    verb: str,
    inputs: Inputs = (),
    overwrite: bool = False,
    option: str = "--out",
    in_place: bool = False,
    writes: Collection[str] | None = None,
    legacy: bool = False,
    continues: Collection[str] = (),
) -> None:
    """Raise :class:`ConfigError` unless ``verb`` may write the folder ``out`` (see the module doc).

    ``in_place``: the verb fills the folder (resuming, adding files) instead of replacing it
    whole; its own earlier output is then written into even when the user added files (they
    are never touched). ``writes``: the names an in-place verb writes, so that an input inside
    the folder but not among them is allowed (``train --arch OUT/config.json --out OUT``);
    None: any input inside refuses. ``legacy``: the caller recognised an output of ``verb``
    from before manifests. ``continues``: other verbs whose output this one continues in place
    (``train`` fine-tuning a ``supernet extract`` folder).
    """
    out = Path(out)
    where = f"{option} {out}"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{where}: exists and is not a folder; give a folder path")
    check_not_protected(out, option=option)
    _check_inputs(out, inputs, where=where, in_place=in_place, writes=writes)
    if not in_place and out.is_symlink():
        raise ConfigError(f"{where}: is a symbolic link (to {_resolve(out)}); give the folder itself")
    if not out.exists():
        parent = out.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise ConfigError(f"{where}: cannot create it ({parent} is a file, not a folder)")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"{where}: cannot create it ({parent} is not writable)")
        return
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: the folder is not writable")
    if all(_is_manifest(p.name) for p in out.iterdir()):
        return  # empty: nothing to lose
    manifest = read_manifest(out)
    ours = legacy if manifest is None else (manifest["verb"] == verb or manifest["verb"] in continues)
    if in_place and ours:
        return  # it writes its own files again; nothing else there is touched
    if manifest is None:
        files = _listing(out, where=where, limit=_MAX_COUNTED)
        raise ConfigError(
            f"{where}: holds {_names(files)} and is not an output of `{verb}` or any verb of the suite (no "
            f"{MANIFEST}); nothing is written there, with or without --overwrite: choose a new folder"
        )
    theirs = manifest["verb"]
    if not ours and not overwrite:
        raise ConfigError(
            f"{where}: holds the output of `{theirs}`, not `{verb}`; choose another folder, "
            "or pass --overwrite to replace it"
        )
    listed = manifest.get("files")
    if listed is None:
        raise ConfigError(
            f"{where}: was filled in place by `{theirs}`, which does not list its files; it cannot be replaced, "
            "with or without --overwrite: choose another folder"
        )
    extra = sorted(set(_listing(out, where=where)) - set(listed))
    if extra:
        raise ConfigError(
            f"{where}: holds {_names(extra)} that `{theirs}` did not write; they are never replaced, with or "
            "without --overwrite: move them away, or choose another folder"
        )


def check_file_output(path: str | os.PathLike | None, inputs: Inputs, *, option: str) -> None:
    """Raise :class:`ConfigError` if the file option ``option`` (``--json``, ``--csv``, ``export --out``)
    would replace what the run reads: a file output may not name an input, nor an existing file
    inside an input folder (a study, a dataset). None and ``-`` (stdout) pass."""
    if path is None or str(path) == "-":
        return
    where = f"{option} {path}"
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{where}: is a folder; give a file path to write")
    resolved = _resolve(target)
    for inp in inputs:
        if inp is None:
            continue
        p = _resolve(inp)
        if p == resolved or (os.path.exists(p) and target.exists() and os.path.samefile(p, target)):
            raise ConfigError(
                f"{where}: is an input of this run ({inp}); writing it would replace it. Give another file"
            )
        if p in resolved.parents and os.path.lexists(resolved):
            raise ConfigError(
                f"{where}: would replace a file inside {inp}, which this run reads; give a path outside it "
                "or a new file name"
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


def mark_output(folder: str | os.PathLike, *, verb: str, files: Iterable[str] | None = None) -> None:
    """Write the manifest. ``files``: what the verb wrote (relative paths); None for folders a verb
    fills in place without listing them (``demo``, ``report``, a study): those are never replaced."""
    listed = None if files is None else sorted(set(files))
    atomic_write_json(Path(folder) / MANIFEST, {"verb": verb, "files": listed})


def listed_files(folder: str | os.PathLike) -> list[str]:
    """The files the folder's manifest lists (none when it has no manifest or lists none)."""
    manifest = read_manifest(folder)
    return list(manifest.get("files") or []) if manifest else []


@contextlib.contextmanager
def staged_output(
    out: str | os.PathLike,
    *,
    verb: str,
    inputs: Inputs = (),
    overwrite: bool = False,
    option: str = "--out",
) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``out``; on success it replaces ``out`` in one rename.

    ``out`` is checked first (:func:`check_output_dir`) and again just before the swap, so files
    a user adds during a long run are not lost either. On any error the temporary folder is
    removed and ``out`` is left as it was. Of the folder replaced, only the files its manifest
    lists are deleted; anything else (added between the check and the swap) is kept aside, named.
    """
    inputs = list(inputs)
    out = Path(out)
    check_output_dir(out, verb=verb, inputs=inputs, overwrite=overwrite, option=option)
    remove_stale_siblings(out)  # staging folders of runs that were killed; only once `out` is accepted
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise OutputError(f"{option} {out}: cannot create a folder beside it ({exc.strerror})") from None
    try:
        yield tmp
        mark_output(tmp, verb=verb, files=_listing(tmp, where=f"{option} {out}"))
        check_output_dir(out, verb=verb, inputs=inputs, overwrite=overwrite, option=option)
    except BaseException:
        _remove_tree_we_made(tmp)
        raise
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the result is an ordinary folder
    old, listed = None, []
    if out.exists():
        manifest = read_manifest(out)
        listed = list((manifest or {}).get("files") or [])
        if listed:
            log.info(
                "%s %s: replacing %d file(s) of the earlier `%s` output",
                option,
                out,
                len(listed),
                (manifest or {}).get("verb"),
            )
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError as exc:
        if old is not None:
            os.replace(old, out)
        _remove_tree_we_made(tmp)
        raise OutputError(f"{option} {out}: cannot move the finished output into place ({exc.strerror})") from None
    if old is not None:
        _remove_listed(old, listed)


def _remove_listed(folder: Path, listed: list[str]) -> None:
    """Delete the manifest's files and the folders they leave empty; keep (and name) anything else."""
    for name in [*listed, MANIFEST]:
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts:
            continue  # a hand-edited manifest never points outside the folder
        path = folder.joinpath(*parts)
        if name.endswith("/"):
            continue  # an empty folder: removed below with the others left empty
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
    for root, dirs, _ in os.walk(folder, topdown=False, followlinks=False):
        for name in dirs:
            with contextlib.suppress(OSError):  # not empty: it holds something not listed
                os.rmdir(Path(root) / name)
    try:
        folder.rmdir()
    except OSError:
        # Visible and outside the leftover pattern (.NAME.old-PID), so no later clean-up removes it.
        kept = folder.with_name(f"{folder.name.removeprefix('.').partition('.old-')[0]}.kept-{int(time.time())}")
        try:
            os.replace(folder, kept)
        except OSError:
            kept = folder
        log.warning("%s: kept; it holds files the replaced output did not list (added during the run?)", kept)


def _remove_tree_we_made(tmp: Path) -> None:
    """Remove the staging folder this process created (never a user's folder)."""
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
