#!/usr/bin/env python
"""rtseg-nas: search, compress, profile and report on the RTSeg-Net model family.

Each verb lives in ``rtseg_nas/cli/<verb>.py`` with ``add_arguments(parser)`` and ``run(args) -> int``;
this file only dispatches. ``python run.py <verb> --help`` explains each one.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rtseg_nas.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
