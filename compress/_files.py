"""All-or-nothing output folders: everything is written to a hidden sibling, renamed at the end.

The rules about what may be replaced live in :mod:`rtseg_core._outputs` (never a folder the
suite did not write, never one holding an input).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from rtseg_core import remove_stale_siblings, staged_output


@contextlib.contextmanager
def output_dir(
    out_dir: str | os.PathLike,
    *,
    verb: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    stage: bool = True,
    overwrite: bool = False,
) -> Iterator[Path]:
    """:func:`~rtseg_core._outputs.staged_output` when ``stage`` (the default); else ``out_dir``
    itself, which the caller has staged already."""
    if stage:
        remove_stale_siblings(out_dir)  # staging folders of runs that were killed
        with staged_output(out_dir, verb=verb, inputs=inputs, overwrite=overwrite) as tmp:
            yield tmp
    else:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        yield out
