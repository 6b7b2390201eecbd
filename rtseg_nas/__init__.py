"""rtseg-nas, the application: the command line (:mod:`rtseg_nas.cli`) and the whole-pipeline demo
(:mod:`rtseg_nas.pipeline`), the only places that may import every stage.

The stages themselves are the top-level packages, bottom to top: ``rtseg_core`` (errors, atomic
files, records, the study folder), ``models`` (the RTSeg-Net family), ``segmentation`` and
``profiling``, ``compress`` and ``search_spaces``, ``reports``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rtseg-nas")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
