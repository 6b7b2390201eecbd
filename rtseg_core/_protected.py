"""Folders no verb may write into or replace, whatever the flags (issue 23).

A mistyped ``--out`` (``--out ~``, ``--out /``, ``--out .``) or an environment where ``$HOME``
is not the account's home (``sudo -E``, a service, a container) must never lose a folder the
suite did not make. This module holds that rule alone, so that every output check asks it
the same question: :func:`check_not_protected`.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtseg_core._errors import ConfigError

# Trees of the operating system: nothing inside them is an output folder (Linux and macOS).
# Top-level folders (/home, /tmp, /var, /opt, /mnt, /data...) are refused by depth anyway.
SYSTEM_TREES = tuple(
    Path(p)
    for p in (
        "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin", "/sys",
        "/usr", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/mail", "/var/backups", "/var/run",
        "/System", "/Library", "/Applications", "/private/etc", "/private/var/db",
    )
)  # fmt: skip


# What /tmp and /var are on macOS (links to these): top-level folders under another name.
_TOP_LEVEL_ELSEWHERE = (Path("/private/tmp"), Path("/private/var"))


def real_home() -> Path | None:
    """The home folder of the effective user from the password database, not from ``$HOME``."""
    try:
        import pwd  # POSIX only

        return Path(pwd.getpwuid(os.geteuid()).pw_dir)
    except (ImportError, KeyError):  # a uid with no passwd entry (some containers): $HOME is all there is
        return None


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path))).resolve()


def check_not_protected(folder: str | os.PathLike, *, option: str = "--out") -> None:
    """Raise :class:`ConfigError` if ``folder`` may not be an output folder at all.

    Refused: the filesystem root and every top-level folder (depth <= 1), anything inside the
    system trees (:data:`SYSTEM_TREES`), the account's real home (password database), ``$HOME``
    and the current folder and every folder above them, a mount point, and an existing folder
    owned by another user than the effective one (``sudo`` onto a user's folder). Symbolic
    links are resolved first, so a link to home is home.
    """
    where = f"{option} {folder}"
    resolved = _resolved(folder)
    protected = [(real_home(), "your home folder"), (_env_home(), "$HOME"), (Path.cwd(), "the current folder")]
    for path, why in protected:
        if path is None:
            continue
        path = _resolved(path)
        if resolved == path or resolved in path.parents:
            what = "is" if resolved == path else "holds"
            raise ConfigError(f"{where}: {what} {why} ({path}); give a new sub-folder")
    if len(resolved.parts) <= 2 or resolved in _TOP_LEVEL_ELSEWHERE:
        raise ConfigError(
            f"{where}: is the filesystem root or a top-level folder ({resolved}); give a new sub-folder of your own"
        )
    if os.path.ismount(resolved):
        raise ConfigError(f"{where}: is a mount point ({resolved}); give a new sub-folder inside it")
    for tree in SYSTEM_TREES:
        if resolved == tree or tree in resolved.parents:
            raise ConfigError(f"{where}: is inside the system folder {tree}; give a folder of your own")
    try:
        owner = os.stat(resolved).st_uid
    except OSError:
        return  # not there yet: nobody else's
    if owner != os.geteuid():
        raise ConfigError(
            f"{where}: is owned by another user (uid {owner}; this process runs as uid {os.geteuid()}); "
            "run as that user, or give a folder of your own"
        )


def _env_home() -> Path | None:
    home = os.environ.get("HOME")
    return Path(home) if home else None
