"""How many CPU threads one of the suite's jobs uses, and how idle OpenMP threads wait.

Measured on the 2-core development machine (1 epoch of ``train --data synthetic:120 --size 96``;
README "Threads"): one training alone takes 1.4 s with PyTorch's default 2 threads and 1.8 s with
1 thread, but two trainings at once take 18 s each at 2 threads against 2.0 s each at 1 thread,
and one 2-thread training beside other people's jobs took 34 s against 2.8 s at 1 thread. An
oversubscribed OpenMP pool spins against the other processes (libgomp's default waiting is a
busy loop), so a thread too many costs up to 10x while a thread too few costs 1.25x.

Policy, for every verb that trains or runs PyTorch on the CPU:

* an explicit ``--threads N`` wins;
* else ``OMP_NUM_THREADS`` when the user set it;
* else ``max(1, min(4, cores // 2))``: two of the suite's jobs (a demo beside a search, two search
  workers, a validation beside a search) fit on the machine without oversubscribing it; the cap of
  4 is where small-image training stops gaining (not measured here: this machine has 2 cores).

The command-line entry point applies it to the whole process before PyTorch starts
(:func:`configure_process`), with ``OMP_WAIT_POLICY=PASSIVE`` so that threads that do wait sleep
instead of spinning; library code only sets threads for a block and restores them
(:func:`torch_threads`).

Whatever the source (``--threads``, ``OMP_NUM_THREADS``, a setting read from a study), a count
above the cores this process may run on is an error naming the source (:func:`check_threads`):
more threads than cores only oversubscribe, and a count of 100,000 made OpenMP reserve 216 GB
for thread stacks before failing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, MutableMapping

from rtseg_core._errors import ConfigError

MAX_DEFAULT_THREADS = 4
THREADS_HELP = (
    "CPU threads for PyTorch (default: OMP_NUM_THREADS if set, else half the cores, at most 4: "
    "two jobs of the suite fit on the machine without oversubscribing it)"
)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's total."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads(environ: MutableMapping[str, str] | None = None, cores: int | None = None) -> int:
    """The policy above without an explicit ``--threads``."""
    env = os.environ if environ is None else environ
    raw = env.get("OMP_NUM_THREADS", "").strip()
    if raw:
        value = int(raw) if raw.isdigit() and len(raw) < 10 else 0
        if value < 1:
            raise ConfigError(f"OMP_NUM_THREADS={raw[:20]!r}: must be an integer >= 1 (or unset)")
        return check_threads(value, source=f"OMP_NUM_THREADS={value}", cores=cores)
    cores = usable_cores() if cores is None else cores
    return max(1, min(MAX_DEFAULT_THREADS, cores // 2))


def check_threads(threads: object, *, source: str, cores: int | None = None) -> int:
    """``threads`` if it is an integer from 1 to the usable cores, else a ConfigError naming ``source``."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        shown = repr(threads) if isinstance(threads, (int, float, str, type(None))) else type(threads).__name__
        raise ConfigError(f"{source}: must be an integer >= 1, got {shown[:40]}")
    cores = usable_cores() if cores is None else cores
    if threads > cores:
        raise ConfigError(
            f"{source}: {threads} threads, but this process may run on {cores} core(s); give at most {cores} "
            "(more threads than cores only oversubscribe them)"
        )
    return threads


def resolve_threads(threads: int | None, *, option: str = "--threads") -> int:
    """``threads`` when given (checked by :func:`check_threads`), else :func:`default_threads`."""
    if threads is None:
        return default_threads()
    return check_threads(threads, source=option)


def configure_process(environ: MutableMapping[str, str] | None = None) -> None:
    """For an entry point, before PyTorch is imported: ``OMP_NUM_THREADS`` and ``OMP_WAIT_POLICY``.

    Both are set only when the user has not set them; libgomp reads them once, when it loads.
    Data-loader workers and other child processes inherit them.
    """
    env = os.environ if environ is None else environ
    env.setdefault("OMP_NUM_THREADS", str(default_threads(env)))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def torch_threads(threads: int, *, source: str = "threads") -> Iterator[None]:
    """``torch.set_num_threads`` for the block, the previous value restored afterwards.

    ``threads`` is checked (:func:`check_threads`) here too, whatever checked it before: this is
    where a count reaches OpenMP. ``source`` names where it came from in the error.
    """
    check_threads(threads, source=source)
    import torch  # lazy: `rtseg-nas --help` should not pay for importing torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
