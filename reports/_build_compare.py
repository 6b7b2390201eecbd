"""Writing ``report --compare``: OUT/compare.csv, compare.json, compare.{png,svg} and compare.html.

The folder follows the suite's output rules (:mod:`rtseg_core._outputs`): new, empty or an earlier
``report --compare`` output (``--overwrite``: any folder), never a folder holding one of the
studies; it is filled beside ``OUT`` and moved into place in one rename, so a reader sees the
whole comparison or the previous one, never half of it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from reports._compare import CompareInfo, compare_studies
from reports._html_compare import render_compare_html
from reports._plot_compare import plot_compare
from reports._plots import save_figure
from rtseg_core import atomic_write_json, atomic_write_text, remove_stale_siblings, staged_output

logger = logging.getLogger(__name__)

VERB = "report --compare"


def build_comparison(
    study_dirs: list[str | os.PathLike], out_dir: str | os.PathLike, *, overwrite: bool = False
) -> tuple[Path, CompareInfo]:
    """Compare the studies' validated fronts and write the files; returns (``OUT/compare.html``, the info)."""
    info = compare_studies(list(study_dirs))  # refusals (budgets, conditions) before any folder is touched
    out = Path(out_dir)
    remove_stale_siblings(out)  # staging folders of runs that were killed
    with staged_output(out, verb=VERB, inputs=list(study_dirs), overwrite=overwrite) as tmp:
        png = save_figure(plot_compare(info), tmp, "compare")["png"]
        atomic_write_text(tmp / "compare.csv", info.table().to_csv(index=False))
        atomic_write_json(tmp / "compare.json", info.to_dict())
        atomic_write_text(tmp / "compare.html", render_compare_html(info, png))
    logger.info("comparison written to %s", out)
    return out / "compare.html", info
