"""The choice lists of the compression verbs, here so that ``--help`` needs no heavy import.

``compress`` imports torch (and its importance tables import Torch-Pruning), so reading the
lists from there made ``prune --help`` and ``quantize --help`` take seconds. These copies are
checked against ``compress``'s own tables in tests/rtseg_nas/test_cli_rules.py, so they cannot
drift apart; ``compress`` still validates every value it gets.
"""

IMPORTANCES = ("l1", "l2", "group-norm", "bn-scale", "fpgm", "taylor", "random", "nni-l1", "nni-fpgm", "nni-taylor")
QUANT_FORMATS = ("int8-static", "int8-qat", "int8-dynamic", "fp16", "dsconv")
QUANT_TARGETS = ("cpu", "jetson-nano-cpu", "jetson-nano-gpu", "gpu")
CALIBRATIONS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")
GRAPH_FORMATS = ("qdq", "qoperator")
