"""``python -m rtseg_nas <verb>``: the same entry as ``rtseg-nas`` and ``python run.py``."""

import sys

from rtseg_nas.cli import main

sys.exit(main())
